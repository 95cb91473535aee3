"""Where a retraining run starts, by hand (``embedloop retrain``) or from a daemon trigger, and
where the promotion policy is applied to its result.

The daemon calls ``daemon.retrain_entry`` with ``(settings, trigger) -> note``; the default,
:func:`on_trigger`, queues a run on one background thread, so the checks keep running while it
trains. ``record_only`` is for installations that retrain elsewhere.
"""

from __future__ import annotations

import logging
import threading

from embedloop.core.promotion import promote_auto
from embedloop.core.settings import Settings
from embedloop.core.versions import open_registry
from embedloop.monitoring.checks import CheckReport
from embedloop.retrain.pipeline import ACTOR, RunResult, retrain
from embedloop.retrain.runs import RunBusy

log = logging.getLogger(__name__)


def retrain_and_promote(settings: Settings, trigger: str = "manual", *, dry_run: bool = False,
                        force: bool = False, progress=None) -> RunResult:
    result = retrain(settings, trigger, dry_run=dry_run, force=force, progress=progress)
    if result.status == "succeeded" and settings.retrain.policy == "auto":
        move = promote_auto(settings, open_registry(settings), result.version, ACTOR)
        result.message += f"; promoted (policy auto): production {move.from_version} -> {move.to_version}"
    elif result.status == "succeeded":
        result.message += f"; waiting for approval: embedloop models approve {result.version}"
    return result


def _background(settings: Settings, trigger: str) -> None:
    try:
        result = retrain_and_promote(settings, trigger)
        log.info("retraining run (%s): %s — %s", trigger, result.status, result.message)
    except RunBusy as exc:
        log.info("retraining not started: %s", exc)
    except Exception:
        log.exception("retraining run (%s) failed", trigger)


def on_trigger(settings: Settings, trigger: CheckReport) -> str:
    # A daemon thread: stopping the daemon must not wait half an hour for a run. A run cut short
    # is cleaned up and recorded as failed by the next one.
    threading.Thread(target=_background, args=(settings, trigger.trigger or "trigger"), name="retrain",
                     daemon=True).start()
    return f"retraining run started ({trigger.trigger} on {trigger.version})"


def record_only(settings: Settings, trigger: CheckReport) -> str:
    log.warning("retraining requested (%s on %s) but no retraining pipeline is configured", trigger.trigger,
                trigger.version)
    return "recorded; no retraining pipeline configured"
