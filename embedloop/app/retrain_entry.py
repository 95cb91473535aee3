"""The retraining entry point the daemon calls with each trigger (``daemon.retrain_entry``).

Its signature is the whole interface: ``(settings, trigger) -> str`` returning a note for the
trigger record, raising on failure. This default only records the trigger, for installations
without a retraining pipeline.
"""

from __future__ import annotations

import logging

from embedloop.core.settings import Settings
from embedloop.monitoring.checks import CheckReport

log = logging.getLogger(__name__)


def record_only(settings: Settings, trigger: CheckReport) -> str:
    log.warning("retraining requested (%s on %s) but no retraining pipeline is configured", trigger.trigger,
                trigger.version)
    return "recorded; no retraining pipeline configured"
