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
    """(settings, registry) of a state folder under ``home`` with the packaged base model registered
    as production."""
    from embedloop.core.models.promotion import ensure_production
    from embedloop.core.models.registry import PRODUCTION
    from embedloop.core.models.versions import packaged_base, register_version
    from embedloop.core.settings import load_settings
    from embedloop.core.state import State

    state = State(load_settings(home))
    registry = state.registry
    if registry.alias(PRODUCTION) is None:
        version = register_version(state.settings, registry, packaged_base())
        ensure_production(registry, version.name)
    return state.settings, registry


def machine() -> dict:
    from embedloop.core.cpu import cpu_model
    from embedloop.core.models.export import cpu_isa

    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "int8_isa": cpu_isa(), "platform": platform.platform()}


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": machine(), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"saved {path}")
    return path


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants."""
    return sum(cpu_seconds_by_role(pid).values())


def cpu_seconds_by_role(pid: int) -> dict[str, float]:
    """CPU time of a server's process tree, split: ``loop`` is the main thread of each worker process
    (the event loop: HTTP, routing, JSON, tokenizing), ``other`` every other thread (the forward
    passes, the query log's writer) and the supervising process."""
    import psutil

    split = {"loop": 0.0, "other": 0.0}
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            for thread in proc.threads():
                role = "loop" if thread.id == proc.pid and proc.pid != pid else "other"
                split[role] += thread.user_time + thread.system_time
        except psutil.NoSuchProcess:
            pass
    return split


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20
