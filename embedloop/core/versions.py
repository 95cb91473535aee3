"""Create and open registered versions: staging -> rename into place -> registry row."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from embedloop.core.artifacts import clean_staging, hash_tree, new_staging_dir, publish, verify
from embedloop.core.encoder import OnnxEncoder
from embedloop.core.export import SERVING_FILES, build_version_folder
from embedloop.core.registry import PRODUCTION, ModelVersion, Registry
from embedloop.core.settings import Settings


def open_registry(settings: Settings) -> Registry:
    settings.home.mkdir(parents=True, exist_ok=True)
    return Registry(settings.registry_url)


def version_dir(settings: Settings, version: ModelVersion) -> Path:
    return settings.models_dir / version.artifact_dir


def recover(settings: Settings, registry: Registry) -> list[Path]:
    """Undo what an interrupted registration left: staging folders and unregistered version folders."""
    removed = clean_staging(settings.staging_dir)
    known = {v.artifact_dir for v in registry.versions()}
    if settings.models_dir.is_dir():
        for child in settings.models_dir.iterdir():
            if child.name not in known:
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
    on_step=None,
) -> ModelVersion:
    """Export ``base`` and register it; nothing is left behind if any step fails."""
    staging = new_staging_dir(settings.staging_dir)
    try:
        manifest = build_version_folder(Path(base), staging, settings.export, on_step=on_step)
        name = registry.next_version_name()
        files = hash_tree(staging)
        final = settings.models_dir / name
        publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        return registry.register(
            name=name,
            source=str(base),
            artifact_dir=name,
            files=files,
            manifest=manifest,
            metrics={"parity": manifest["parity"]},
            training=training,
            parent=parent,
            actor=actor,
        )
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise


def ensure_production(registry: Registry, version: str, actor: str | None = None) -> bool:
    """Point ``production`` at ``version`` if nothing is in production yet."""
    if registry.alias(PRODUCTION) is not None:
        return False
    registry.move_alias(PRODUCTION, version, action="init", actor=actor, reason="first version")
    return True


def load_encoder(settings: Settings, version: ModelVersion, graph: str = "int8") -> OnnxEncoder:
    """An encoder for a registered version, after checking the files it reads against the registry."""
    folder = version_dir(settings, version)
    files = SERVING_FILES if graph == "int8" else (*SERVING_FILES, version.manifest["graphs"][graph])
    verify(folder, version.files, only=files)
    return OnnxEncoder(
        folder,
        graph,
        intra_op_threads=settings.serving.intra_op_threads,
        allow_spinning=settings.serving.ort_allow_spinning,
        use_gpu=settings.serving.use_gpu,
        manifest=version.manifest,
    )
