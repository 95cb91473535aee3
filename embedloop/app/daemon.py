"""The daemon: runs the checks on a schedule and turns their triggers into retraining.

Only one daemon acts on a state folder at a time (a lease in the monitoring database). Jobs live
in memory: every start schedules them anew from the settings, first run at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from embedloop.app.triggers import TriggerAction, Triggers, action_for
from embedloop.core.state import State
from embedloop.monitoring import metrics
from embedloop.monitoring.drift_check import DriftCheck
from embedloop.monitoring.probe_check import ProbeCheck
from embedloop.monitoring.report import CheckReport

log = logging.getLogger(__name__)

LEASE_NAME = "daemon"


class Daemon:
    def __init__(self, state: State, act: TriggerAction | None = None) -> None:
        self.state = state
        self.settings = state.settings
        self.lease = state.lease(LEASE_NAME, self.settings.daemon.lease_ttl_s)
        self.triggers = Triggers(state, act or action_for(state))
        self.scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        self.stopped = threading.Event()

    def run_check(self, name: str, check: Callable[[], CheckReport]) -> CheckReport | None:
        try:
            report = check()
        except Exception:
            log.exception("%s check failed", name)
            metrics.CHECK_FAILURES.labels(name).inc()
            return None
        log.info("%s check on %s: %s %s", name, report.version, report.status.value, report.message)
        if report.trigger:
            self.triggers.handle(report)
        return report

    def schedule(self) -> None:
        now = datetime.now(timezone.utc)
        for name in ("drift", "probe"):  # at 0 from the start, so rates and alerts have a series to read
            metrics.CHECK_FAILURES.labels(name)
        for name, check, interval in (("drift", DriftCheck(self.state), self.settings.drift.interval_s),
                                      ("probe", ProbeCheck(self.state), self.settings.probes.interval_s)):
            self.scheduler.add_job(self.run_check, "interval", args=(name, check), seconds=interval, id=name,
                                   next_run_time=now)

    def wait_for_lease(self, wait: bool, poll_s: float = 1.0) -> bool:
        while not self.lease.acquire():
            holder = self.lease.current()
            if not wait:
                return False
            log.info("waiting for the daemon lease held by %s", holder[0] if holder else "?")
            if self.stopped.wait(poll_s):
                return False
        return True

    def run(self, wait: bool = False) -> int:
        """0 when stopped, 2 when another daemon holds the lease, 3 when the lease was lost."""
        if not self.wait_for_lease(wait):
            holder = self.lease.current()
            log.error("another daemon holds %s (%s)", self.settings.home, holder[0] if holder else "?")
            return 2
        if self.settings.daemon.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(self.settings.daemon.metrics_port, addr=self.settings.serving.host)
        self.schedule()
        self.scheduler.start()
        try:
            renew_every = self.settings.daemon.lease_ttl_s / 3
            while not self.stopped.wait(renew_every):
                if not self.lease.renew():
                    log.error("lost the daemon lease; stopping")
                    return 3
            return 0
        finally:
            self.scheduler.shutdown(wait=True)
            self.lease.release()

    def stop(self) -> None:
        self.stopped.set()
