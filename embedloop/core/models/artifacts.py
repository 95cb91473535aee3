"""Version folders on disk: staging, atomic publish, and sha256 integrity checks."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path


class IntegrityError(Exception):
    """An artifact file is missing or its content differs from what was registered."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, keyed by its POSIX path relative to ``root``."""
    return {
        path.relative_to(root).as_posix(): sha256_file(path)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def verify(root: Path, files: dict[str, str], only: Iterable[str] | None = None) -> None:
    """Raise :class:`IntegrityError` unless the listed files under ``root`` hash as recorded."""
    names = list(only) if only is not None else list(files)
    for name in names:
        if name not in files:
            raise IntegrityError(f"{name} was not registered with this version")
        path = root / name
        if not path.is_file():
            raise IntegrityError(f"{path} is missing")
        actual = sha256_file(path)
        if actual != files[name]:
            raise IntegrityError(f"{path}: sha256 {actual[:12]}… differs from registered {files[name][:12]}…")


def new_staging_dir(staging_root: Path) -> Path:
    path = staging_root / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


def publish(staging: Path, final: Path) -> None:
    """Move a finished staging folder into place in one rename (same filesystem)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        raise FileExistsError(f"{final} already exists")
    os.replace(staging, final)


def clean_staging(staging_root: Path) -> list[Path]:
    """Remove leftovers of interrupted registrations; returns what was removed."""
    removed = []
    if staging_root.is_dir():
        for child in staging_root.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
            removed.append(child)
    return removed
