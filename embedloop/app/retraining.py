"""Where a retraining run starts, by hand (``embedloop retrain``) or from a daemon trigger, and
where the promotion policy is applied to its result."""

from __future__ import annotations

from embedloop.core.progress import Progress, no_progress
from embedloop.core.state import State
from embedloop.retrain.pipeline import ACTOR, RunResult, retrain


def retrain_and_promote(state: State, trigger: str = "manual", *, dry_run: bool = False, force: bool = False,
                        progress: Progress = no_progress) -> RunResult:
    result = retrain(state, trigger, dry_run=dry_run, force=force, progress=progress)
    if result.status != "succeeded":
        return result
    if state.settings.promotion.policy == "auto":
        move = state.promotion.approve(result.version, actor=ACTOR, reason="policy auto: passed its gates")
        result.message += f"; promoted (policy auto): production {move.from_version} -> {move.to_version}"
    else:
        result.message += f"; waiting for approval: embedloop models approve {result.version}"
    return result
