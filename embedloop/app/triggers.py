"""What the daemon does with a check's trigger: record it, respect the cooldown, and hand it to
the action chosen by ``daemon.on_trigger`` — a retraining run on a background thread, or nothing
beyond the record (for installations that retrain elsewhere)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from embedloop.app.retraining import retrain_and_promote
from embedloop.core.history.triggers import TriggerStatus
from embedloop.core.settings import OnTrigger
from embedloop.core.state import State
from embedloop.monitoring import metrics
from embedloop.monitoring.report import CheckReport
from embedloop.retrain.heartbeat import RunBusy

log = logging.getLogger(__name__)

TriggerAction = Callable[[CheckReport], str]  # returns a note for the trigger's record


class Triggers:
    def __init__(self, state: State, act: TriggerAction) -> None:
        self.state, self.act = state, act

    def handle(self, report: CheckReport) -> TriggerStatus:
        """Record the trigger; act on it unless the last one was within the cooldown."""
        store, cooldown = self.state.triggers, self.state.settings.daemon.trigger_cooldown_s
        last = store.last_acted_at()
        if last is not None and time.time() - last < cooldown:
            store.add(report.trigger, report.version, report.figures, TriggerStatus.SUPPRESSED,
                      f"cooldown: {cooldown - (time.time() - last):.0f} s left")
            metrics.TRIGGERS.labels(report.trigger, TriggerStatus.SUPPRESSED.value).inc()
            return TriggerStatus.SUPPRESSED
        trigger_id = store.add(report.trigger, report.version, report.figures, TriggerStatus.OPEN)
        try:
            note, status = str(self.act(report))[:500], TriggerStatus.HANDLED
        except Exception as exc:
            log.exception("acting on the %s trigger failed", report.trigger)
            note, status = str(exc)[:500], TriggerStatus.FAILED
        store.set_status(trigger_id, status, note)
        metrics.TRIGGERS.labels(report.trigger, status.value).inc()
        return status


def retrain_in_background(state: State) -> TriggerAction:
    def run(reason: str) -> None:
        try:
            result = retrain_and_promote(state, reason)
            log.info("retraining run (%s): %s — %s", reason, result.status, result.message)
        except RunBusy as exc:
            log.info("retraining not started: %s", exc)
        except Exception:
            log.exception("retraining run (%s) failed", reason)

    def act(report: CheckReport) -> str:
        # A daemon thread: stopping the daemon must not wait half an hour for a run. A run cut short
        # is cleaned up and recorded as failed by the next one.
        threading.Thread(target=run, args=(report.trigger or "trigger",), name="retrain", daemon=True).start()
        return f"retraining run started ({report.trigger} on {report.version})"

    return act


def record_only(report: CheckReport) -> str:
    log.warning("retraining requested (%s on %s); daemon.on_trigger is record", report.trigger, report.version)
    return "recorded; daemon.on_trigger is record"


def action_for(state: State) -> TriggerAction:
    return retrain_in_background(state) if state.settings.daemon.on_trigger is OnTrigger.RETRAIN else record_only
