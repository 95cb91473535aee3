"""Query adapters: a newer version's query vectors mapped into an older version's space, so a client
whose index still holds the older version's document vectors gets part of the update's gain
without reindexing (after Drift-Adapter, EMNLP 2025).

The map is a rotation (orthogonal Procrustes, SciPy) fitted at the gates on corpus documents
embedded by both versions, and registered with the newer version as ``adapter-<older>.npy``. It is
served as its own model name, ``embedloop@v2~v1``: v2's vectors, rotated into v1's space. Because
a rotation keeps every inner product, documents a client adds through the same name rank against
its queries exactly as v2 would rank them, and against its v1 documents as the adapter was measured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.linalg import orthogonal_procrustes

from embedloop.core.models.artifacts import verify
from embedloop.core.models.encoder import normalize_rows
from embedloop.core.models.registry import ModelVersion, UnknownVersion

ADAPTER_NAME = re.compile(r"^(v\d+)~(v\d+)$")  # the model name a version's adapter is served under
MIN_DOCUMENTS_PER_DIMENSION = 2  # fewer documents than this many per dimension: the rotation is not fitted


def adapter_file(into: str) -> str:
    return f"adapter-{into}.npy"


def adapter_name(version: str, into: str) -> str:
    return f"{version}~{into}"


def parse_adapter_name(name: str) -> tuple[str, str] | None:
    """``(version, into)`` of an adapter's model name (``v2~v1``), None for any other name."""
    found = ADAPTER_NAME.match(name)
    return (found.group(1), found.group(2)) if found else None


def fit_rotation(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """The orthogonal matrix R minimising ‖new·R − old‖ over documents embedded by both versions."""
    rotation, _ = orthogonal_procrustes(new.astype(np.float64), old.astype(np.float64))
    return rotation.astype(np.float32)


def rotate(vectors: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    return normalize_rows(vectors @ rotation)


@dataclass(frozen=True)
class QueryAdapter:
    version: str  # whose vectors are mapped
    into: str  # the version whose space they are mapped into
    rotation: np.ndarray

    @property
    def name(self) -> str:
        return adapter_name(self.version, self.into)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        return rotate(vectors, self.rotation)


def adapters_of(version: ModelVersion) -> list[str]:
    """The versions ``version`` has a registered adapter into."""
    return sorted(name[len("adapter-"):-len(".npy")] for name in version.files
                  if name.startswith("adapter-") and name.endswith(".npy"))


def load_adapter(folder: Path, version: ModelVersion, into: str) -> QueryAdapter:
    """``version``'s adapter into ``into``, after checking the file against the registry."""
    name = adapter_file(into)
    if name not in version.files:
        raise UnknownVersion(f"{version.name} has no query adapter into {into}'s space "
                             f"(it has: {', '.join(adapters_of(version)) or 'none'})")
    verify(folder, version.files, only=[name])
    rotation = np.load(folder / name, allow_pickle=False)
    dims = version.manifest["dimensions"]
    if rotation.shape != (dims, dims):
        raise ValueError(f"{folder / name}: shape {rotation.shape}, expected ({dims}, {dims})")
    return QueryAdapter(version.name, into, rotation)
