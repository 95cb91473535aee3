import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from embedloop.app.daemon import handle_trigger
from embedloop.monitoring.checks import CheckReport
from embedloop.monitoring.history import MonitoringStore
from tests.conftest import REPO, free_port, make_settings

CALLS: list[CheckReport] = []


def recording_entry(settings, trigger):
    CALLS.append(trigger)
    return f"retraining {trigger.version}"


def failing_entry(settings, trigger):
    raise RuntimeError("no GPU today")


def report(reason="drift"):
    return CheckReport("drift", "v1", "declared", {"share_drifted": 0.4}, trigger=reason)


def test_trigger_calls_the_entry_point_then_cools_down(tmp_path):
    CALLS.clear()
    settings = make_settings(tmp_path, monitoring={"daemon": {
        "retrain_entry": "tests.app.test_daemon:recording_entry", "trigger_cooldown_s": 3600}})
    assert handle_trigger(settings, report()) == "handled"
    assert handle_trigger(settings, report("probe_recall")) == "suppressed"
    assert [c.trigger for c in CALLS] == ["drift"]
    rows = MonitoringStore(settings.monitoring_url).triggers()
    assert [(r.reason, r.status) for r in rows] == [("probe_recall", "suppressed"), ("drift", "handled")]
    assert rows[1].note == "retraining v1" and rows[1].figures == {"share_drifted": 0.4}


def test_a_failing_entry_point_is_recorded(tmp_path):
    settings = make_settings(tmp_path, monitoring={"daemon": {
        "retrain_entry": "tests.app.test_daemon:failing_entry", "trigger_cooldown_s": 0}})
    assert handle_trigger(settings, report()) == "failed"
    assert MonitoringStore(settings.monitoring_url).triggers()[0].note == "no GPU today"


def start_daemon(home: Path, port: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "EMBEDLOOP_HOME": str(home), "EMBEDLOOP_MONITORING__DRIFT__INTERVAL_S": "1",
           "EMBEDLOOP_MONITORING__PROBES__INTERVAL_S": "1", "EMBEDLOOP_MONITORING__DAEMON__METRICS_PORT": str(port),
           "EMBEDLOOP_MONITORING__DAEMON__LEASE_TTL_S": "3"}
    return subprocess.Popen([str(Path(sys.executable).parent / "embedloop"), "daemon", *extra], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.mark.integration
def test_daemon_runs_checks_holds_the_lease_and_stops_cleanly(tiny_home):
    port = free_port()
    first = start_daemon(tiny_home, port)
    try:
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline and 'check="drift"' not in text:
            time.sleep(0.5)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx.HTTPError:
                pass
        assert 'embedloop_check_last_run_timestamp_seconds{check="drift"}' in text
        second = start_daemon(tiny_home, free_port())
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 2 and "another daemon is already running" in out
    finally:
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out[-2000:]
    with sqlite3.connect(tiny_home / "scheduler.db") as db:
        assert sorted(r[0] for r in db.execute("SELECT id FROM apscheduler_jobs")) == ["drift", "probe"]


@pytest.mark.integration
def test_up_runs_service_and_daemon_and_stops_both(tiny_home):
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "EMBEDLOOP_HOME": str(tiny_home),
           "EMBEDLOOP_MONITORING__DAEMON__METRICS_PORT": str(metrics_port)}
    up = subprocess.Popen([str(Path(sys.executable).parent / "embedloop"), "up", "--port", str(port)], cwd=REPO,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)
    try:
        deadline, ready = time.monotonic() + 120, {"service": False, "daemon": False}
        while time.monotonic() < deadline and not all(ready.values()):
            time.sleep(0.5)
            for name, url in (("service", f"http://127.0.0.1:{port}/readyz"),
                              ("daemon", f"http://127.0.0.1:{metrics_port}/metrics")):
                try:
                    ready[name] = ready[name] or httpx.get(url, timeout=2).status_code == 200
                except httpx.HTTPError:
                    pass
        assert all(ready.values()), ready
        response = httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", json={"input": "x", "model": "embedloop"})
        assert response.status_code == 200
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            out, _ = up.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            out, _ = up.communicate()
    assert up.returncode == 0, out[-3000:]
    for port_ in (port, metrics_port):
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port_}/metrics", timeout=2)
