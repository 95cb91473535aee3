"""When probe recall is alarming (the evaluation itself is :mod:`embedloop.core.evaluation`)."""

from __future__ import annotations


def probe_alarm(value: float, baseline: float | None, floor: float, max_drop: float,
                metric: str = "recall@10") -> str | None:
    """Why the probe metric is alarming, or None."""
    if value < floor:
        return f"{metric} {value:.4f} is below the floor {floor:.4f}"
    if baseline is not None and value < baseline - max_drop:
        return f"{metric} {value:.4f} dropped more than {max_drop:.4f} below {baseline:.4f} at promotion"
    return None
