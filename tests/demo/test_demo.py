"""`embedloop-demo --quick`: the real service, daemon and registry play the whole story."""

import json
import os
import subprocess

import pytest

from tests.conftest import DATASETS, REPO

pytestmark = pytest.mark.integration


def test_quick_demo_tells_the_story(tmp_path):
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDLOOP_")}
    done = subprocess.run([str(REPO / ".venv" / "bin" / "embedloop-demo"), "--quick", "--dataset",
                           str(DATASETS / "medquad"), "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    head = summary["headline"]
    assert head["seconds_shift_to_drift_declared"] is not None and head["seconds_shift_to_drift_declared"] > 0
    assert head["promoted"] is not None and head["seconds_shift_to_promotion"] > 0
    assert head["probe_after_recovery"]["mrr@10"] > head["probe_at_dip"]["mrr@10"]
    assert head["failed_requests"] == 0 and head["requests"] > 100
    moves = [(a["action"], a["actor"]) for a in summary["audit"] if a["alias"] == "production"]
    assert moves[0] == ("init", "demo") and moves[1] == ("approve", "embedloop-retrain")
    assert moves[-3:] == [("approve", "demo"), ("rollback", "demo"), ("approve", "demo")]
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and all((out / f"{n}.png").is_file()
                                                                for n in ("drift", "probes", "latency", "timeline"))
    assert f"report: {out / 'report.html'}" in done.stdout.replace("\n", "")
