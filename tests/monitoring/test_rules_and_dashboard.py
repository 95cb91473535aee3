"""Alert rules pass promtool's unit tests; every metric the rules and the dashboard query is exported."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import Counter
from prometheus_client.metrics import MetricWrapperBase

from embedloop.monitoring import metrics as monitoring_metrics
from embedloop.service import metrics as service_metrics

MONITORING = Path(monitoring_metrics.__file__).parent
PROMETHEUS = MONITORING / "prometheus"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "embedloop.json"
METRIC = re.compile(r"\bembedloop_[a-z0-9_]+")

promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) missing")


def exported_names() -> set[str]:
    names = set()
    for module in (service_metrics, monitoring_metrics):
        for obj in vars(module).values():
            if isinstance(obj, MetricWrapperBase):
                base = obj._name
                if isinstance(obj, Counter):
                    names.add(f"{base}_total")
                elif obj._type == "histogram":
                    names.update(f"{base}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
                else:
                    names.add(base)
    return names


def queried_names() -> dict[str, set[str]]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    rule_exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    rule_exprs += [r["annotations"].get("description", "") for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    dash_exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    dash_exprs += [a["expr"] for a in dashboard["annotations"]["list"]]
    return {"rules": {m for e in rule_exprs for m in METRIC.findall(e)},
            "dashboard": {m for e in dash_exprs for m in METRIC.findall(e)}}


def test_every_queried_metric_is_exported():
    exported = exported_names()
    for where, names in queried_names().items():
        assert names, where
        assert names <= exported, f"{where} queries metrics nobody exports: {sorted(names - exported)}"


def test_dashboard_covers_the_required_views():
    titles = " | ".join(p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]).lower()
    for view in ("traffic", "latency", "batch", "tokens", "drift", "probe recall", "version timeline", "retrain"):
        assert view in titles, view


@promtool
def test_alert_rules_unit_tests_pass():
    result = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@promtool
def test_scrape_config_is_valid():
    result = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=PROMETHEUS,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
