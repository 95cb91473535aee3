"""The dashboard and the alert rules against the real Prometheus server (Debian's `prometheus`):
it scrapes a real service and a real daemon on loopback with the project's scrape configuration,
and every Grafana panel query and every alert expression must evaluate to data. An expression that
parses but matches nothing is a bug the name check in test_rules_and_dashboard cannot see."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from embedloop.core.labels.beir import load_beir
from embedloop.core.labels.probes import ProbeQuery
from tests.conftest import DATASETS, REPO, copy_home, free_port, make_state
from tests.monitoring.test_rules_and_dashboard import DASHBOARD, PROMETHEUS
from tests.servers import start_server

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus (Debian package) missing")]
COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")


def left_of_comparison(expr: str) -> str:
    """An alert's expression without its top-level comparison: what must have data for the alert to
    be able to fire (``max(x) == 1`` is empty while it does not fire; ``max(x)`` must not be)."""
    depth, quoted, i = 0, False, 0
    while i < len(expr):
        ch = expr[i]
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "([{":
            depth += 1
        elif not quoted and ch in ")]}":
            depth -= 1
        elif not quoted and depth == 0:
            for op in COMPARISONS:
                if expr.startswith(op, i):
                    return expr[:i].strip()
        i += 1
    return expr.strip()


def test_left_of_comparison():
    assert left_of_comparison('max(x{a="b"}) == 1') == 'max(x{a="b"})'
    assert left_of_comparison('time() - max(y{check="drift"}) > 3 * 3600') == 'time() - max(y{check="drift"})'
    assert left_of_comparison('sum(rate(z{s=~"5.."}[5m]))') == 'sum(rate(z{s=~"5.."}[5m]))'


@pytest.fixture(scope="module")
def home(tmp_path_factory, tiny_registered):
    home = copy_home(tiny_registered, tmp_path_factory.mktemp("prometheus"))
    test = load_beir(DATASETS / "medquad", "test")
    ids = sorted(test.qrels)[:40]
    docs = {d for q in ids for d in test.qrels[q]} | set(sorted(test.corpus)[:200])
    with make_state(home) as state:
        state.probes.add([ProbeQuery(q, test.queries[q]["text"], test.queries[q]["source"], tuple(test.qrels[q]))
                          for q in ids], {d: test.corpus[d] for d in docs})
    (home / "config.yaml").write_text(json.dumps({
        "querylog": {"sample_rate": 1.0, "flush_interval_s": 0.2},
        "drift": {"interval_s": 2, "window_size": 20, "reference_size": 20, "consecutive": 1},
        "probes": {"interval_s": 2, "floor": 1.0},  # an alarm, hence a trigger, at the first probe check
        "daemon": {"metrics_port": free_port(), "on_trigger": "record", "trigger_cooldown_s": 0},
    }))
    return home


@pytest.fixture(scope="module")
def stack(home, tmp_path_factory):
    """The service, the daemon and Prometheus scraping both every second."""
    logs = tmp_path_factory.mktemp("prometheus-logs")
    service = start_server(home, logs / "service.log")
    env = {**os.environ, "EMBEDLOOP_HOME": str(home)}
    with open(logs / "daemon.log", "w") as out:
        daemon = subprocess.Popen([str(Path(sys.executable).parent / "embedloop"), "daemon"], cwd=REPO, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    daemon_port = json.loads((home / "config.yaml").read_text())["daemon"]["metrics_port"]
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())  # the project's, on our ports
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS / "alerts.yml")]
    targets = {"embedloop-service": service.url.removeprefix("http://"), "embedloop-daemon": f"127.0.0.1:{daemon_port}"}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    (logs / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with open(logs / "prometheus.log", "w") as out:
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={logs / 'prometheus.yml'}", f"--storage.tsdb.path={logs / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        yield service, f"http://127.0.0.1:{port}"
    finally:
        for process in (prometheus, daemon):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        service.stop()


def query(prometheus: str, expr: str) -> list:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def send_traffic(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(60):  # distinct questions: drift windows and the query log
            assert http.post("/v1/embeddings", json={"model": "embedloop", "input": f"question {i} about glaucoma"}
                             ).status_code == 200
        long = http.post("/v1/embeddings", json={"model": "embedloop", "input": "word " * 200})
        assert long.status_code == 200  # truncated, and counted
        with ThreadPoolExecutor(16) as pool:  # a burst: batches of several texts
            list(pool.map(lambda i: http.post("/v1/embeddings", json={"model": "embedloop",
                                                                       "input": [f"burst {i} {j}" for j in range(8)]}),
                          range(64)))


def test_every_panel_and_alert_expression_has_data(stack):
    service, prometheus = stack
    send_traffic(service.url)
    dashboard = json.loads(DASHBOARD.read_text())
    panels = {t["expr"]: p["title"] for p in dashboard["panels"] for t in p["targets"]}
    rules = [r for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for r in g["rules"]]
    alerts = {left_of_comparison(r["expr"]): r["alert"] for r in rules}
    wanted = {**panels, **alerts}
    empty = dict(wanted)
    deadline = time.monotonic() + 90  # checks every 2 s, scrapes every second
    while empty and time.monotonic() < deadline:
        time.sleep(2)
        send_traffic(service.url) if len(empty) > len(wanted) / 2 else None
        empty = {expr: where for expr, where in empty.items() if not query(prometheus, expr)}
    assert not empty, f"expressions with no data: {empty}"
    loaded = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    health = {r["name"]: r["health"] for g in loaded for r in g["rules"]}
    assert set(health) == {r["alert"] for r in rules} and set(health.values()) == {"ok"}, health
    firing = {a["labels"]["alertname"] for a in httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()
              ["data"]["alerts"]}
    assert "ProbeRecallBelowFloor" in firing  # the floor of 1.0 alarms: the rule sees the daemon's gauge
