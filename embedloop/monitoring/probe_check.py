"""When probe recall is alarming (the evaluation itself is :mod:`embedloop.core.evaluation`)."""

from __future__ import annotations


def probe_alarm(recall10: float, baseline: float | None, floor: float, max_drop: float) -> str | None:
    """Why recall@10 is alarming, or None."""
    if recall10 < floor:
        return f"recall@10 {recall10:.4f} is below the floor {floor:.4f}"
    if baseline is not None and recall10 < baseline - max_drop:
        return f"recall@10 {recall10:.4f} dropped more than {max_drop:.4f} below {baseline:.4f} at promotion"
    return None
