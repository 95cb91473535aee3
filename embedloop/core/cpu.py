"""What this CPU is: its feature flags and model name (Linux ``/proc/cpuinfo``; empty elsewhere)."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        return CPUINFO.read_text()
    except OSError:
        return ""


def cpu_flags() -> frozenset[str]:
    """Feature flags of the first CPU (``avx2``, ``avx512_vnni``, …)."""
    line = next((line for line in _cpuinfo().splitlines() if line.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def cpu_model() -> str:
    line = next((line for line in _cpuinfo().splitlines() if line.startswith("model name")), "")
    return line.partition(":")[2].strip() or platform.processor()
