"""The daemon: runs the checks on a persistent APScheduler, turns triggers into retraining calls.

Only one daemon acts on a state folder at a time (a lease in the monitoring database).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from datetime import datetime, timezone

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from embedloop.core.lease import Lease
from embedloop.core.settings import Settings, load_settings
from embedloop.monitoring import metrics
from embedloop.monitoring.checks import CheckReport, record_run, run_drift_check, run_probe_check
from embedloop.monitoring.history import MonitoringStore

log = logging.getLogger(__name__)

LEASE_NAME = "daemon"
JOBS = {
    "drift": "embedloop.app.daemon:drift_job",
    "probe": "embedloop.app.daemon:probe_job",
}


def resolve(reference: str):
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def handle_trigger(settings: Settings, report: CheckReport) -> str:
    """Record the trigger; call the retraining entry point unless we are in the cooldown."""
    store = MonitoringStore(settings.monitoring_url)
    last = store.last_acted_trigger_at()
    cooldown = settings.monitoring.daemon.trigger_cooldown_s
    if last is not None and time.time() - last < cooldown:
        store.add_trigger(report.trigger, report.version, report.figures, "suppressed",
                          f"cooldown: {cooldown - (time.time() - last):.0f} s left")
        metrics.TRIGGERS.labels(report.trigger, "suppressed").inc()
        return "suppressed"
    trigger_id = store.add_trigger(report.trigger, report.version, report.figures, "open")
    try:
        note = resolve(settings.monitoring.daemon.retrain_entry)(settings, report)
        store.set_trigger_status(trigger_id, "handled", str(note)[:500])
        status = "handled"
    except Exception as exc:
        log.exception("retraining entry point failed")
        store.set_trigger_status(trigger_id, "failed", str(exc)[:500])
        status = "failed"
    metrics.TRIGGERS.labels(report.trigger, status).inc()
    return status


def run_check(name: str, check) -> CheckReport | None:
    settings = load_settings()
    try:
        report = check(settings)
    except Exception:
        log.exception("%s check failed", name)
        metrics.CHECK_FAILURES.labels(name).inc()
        return None
    record_run(report)
    log.info("%s check on %s: %s %s", name, report.version, report.status, report.message)
    if report.trigger:
        handle_trigger(settings, report)
    return report


def drift_job() -> None:
    run_check("drift", run_drift_check)


def probe_job() -> None:
    run_check("probe", run_probe_check)


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        d = settings.monitoring.daemon
        self.lease = Lease(settings.monitoring_url, LEASE_NAME, d.lease_ttl_s)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=settings.scheduler_url)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        )
        self.stopped = threading.Event()

    def wait_for_lease(self, wait: bool, poll_s: float = 1.0) -> bool:
        while not self.lease.acquire():
            holder = self.lease.current()
            if not wait:
                return False
            log.info("waiting for the daemon lease held by %s", holder[0] if holder else "?")
            if self.stopped.wait(poll_s):
                return False
        return True

    def schedule(self) -> None:
        m = self.settings.monitoring
        os.environ["EMBEDLOOP_HOME"] = str(self.settings.home)  # jobs read settings like every entry point
        for job_id, reference, interval in (("drift", JOBS["drift"], m.drift.interval_s),
                                            ("probe", JOBS["probe"], m.probes.interval_s)):
            self.scheduler.add_job(reference, "interval", seconds=interval, id=job_id, replace_existing=True,
                                   next_run_time=datetime.now(timezone.utc))

    def run(self, wait: bool = False) -> int:
        if not self.wait_for_lease(wait):
            holder = self.lease.current()
            log.error("another daemon holds %s (%s)", self.settings.home, holder[0] if holder else "?")
            return 2
        if self.settings.monitoring.daemon.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(self.settings.monitoring.daemon.metrics_port, addr=self.settings.serving.host)
        self.schedule()
        self.scheduler.start()
        try:
            renew_every = self.settings.monitoring.daemon.lease_ttl_s / 3
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
