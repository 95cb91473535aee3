import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from embedloop.app.daemon import Daemon
from embedloop.app.triggers import Triggers, action_for, record_only
from embedloop.core.history.triggers import TriggerStatus
from embedloop.monitoring.report import CheckReport, CheckStatus
from tests.conftest import REPO, free_port


def report(reason="drift"):
    return CheckReport("drift", "v1", CheckStatus.DECLARED, {"share_drifted": 0.4}, trigger=reason)


def test_trigger_is_acted_on_then_cools_down(tmp_path, open_states):
    state = open_states(tmp_path, daemon={"trigger_cooldown_s": 3600})
    calls = []
    triggers = Triggers(state, lambda r: calls.append(r) or f"retraining {r.version}")
    assert triggers.handle(report()) is TriggerStatus.HANDLED
    assert triggers.handle(report("probe_recall")) is TriggerStatus.SUPPRESSED
    assert [c.trigger for c in calls] == ["drift"]
    rows = state.triggers.recent()
    assert [(r.reason, r.status) for r in rows] == [("probe_recall", "suppressed"), ("drift", "handled")]
    assert rows[1].note == "retraining v1" and rows[1].figures == {"share_drifted": 0.4}


def test_a_failing_action_is_recorded(tmp_path, open_states):
    state = open_states(tmp_path, daemon={"trigger_cooldown_s": 0})

    def no_gpu(_report):
        raise RuntimeError("no GPU today")

    assert Triggers(state, no_gpu).handle(report()) is TriggerStatus.FAILED
    assert state.triggers.recent()[0].note == "no GPU today"


def test_the_action_follows_the_setting(tmp_path, open_states):
    assert action_for(open_states(tmp_path, daemon={"on_trigger": "record"})) is record_only
    assert action_for(open_states(tmp_path)) is not record_only


def test_a_check_that_raises_is_counted_and_the_daemon_keeps_going(tmp_path, open_states):
    daemon = Daemon(open_states(tmp_path), act=record_only)

    def broken():
        raise OSError("disk full")

    assert daemon.run_check("drift", broken) is None
    triggered = daemon.run_check("drift", report)
    assert triggered.trigger == "drift" and daemon.state.triggers.recent()[0].status == "handled"


def start_daemon(home: Path, port: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "EMBEDLOOP_DRIFT__INTERVAL_S": "1", "EMBEDLOOP_PROBES__INTERVAL_S": "1",
           "EMBEDLOOP_DAEMON__METRICS_PORT": str(port), "EMBEDLOOP_DAEMON__LEASE_TTL_S": "3"}
    return subprocess.Popen([str(Path(sys.executable).parent / "embedloop"), "daemon", "--home", str(home), *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


@pytest.mark.integration
def test_daemon_runs_checks_holds_the_lease_and_stops_cleanly(tiny_home):
    port = free_port()
    first = start_daemon(tiny_home, port)
    try:
        deadline = time.monotonic() + 60
        text, finished = "", 'embedloop_check_last_run_timestamp_seconds{check="drift"}'
        # other drift series (duration, runs) appear before the check finishes: wait for this one
        while time.monotonic() < deadline and finished not in text:
            time.sleep(0.5)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx.HTTPError:
                pass
        assert finished in text
        second = start_daemon(tiny_home, free_port())
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 2 and "another daemon is already running" in out
    finally:
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out[-2000:]
    assert "drift check on v1" in out and not (tiny_home / "scheduler.db").exists()  # jobs live in memory


@pytest.mark.integration
def test_up_runs_service_and_daemon_and_stops_both(tiny_home):
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "EMBEDLOOP_HOME": str(tiny_home), "EMBEDLOOP_DAEMON__METRICS_PORT": str(metrics_port)}
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
