"""`embedloop-demo --quick`: the real service, daemon and registry play the whole story."""

import json
import os
import signal
import subprocess

import pytest

from tests.conftest import DATASETS, REPO

# The whole story (three retraining runs through the real service and daemon) takes 15-25 minutes on
# two AVX2 cores: longer than the rest of the suite together, so it runs when asked for.
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.environ.get("EMBEDLOOP_TEST_DEMO") != "1",
                                 reason="the demo's whole story takes 15-25 min: EMBEDLOOP_TEST_DEMO=1 runs it")]


def run_demo(out, timeout: float) -> subprocess.CompletedProcess:
    """The demo as a user starts it; past ``timeout`` it is stopped like Ctrl-C, so that it stops its
    service and daemon itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDLOOP_")}
    args = [str(REPO / ".venv" / "bin" / "embedloop-demo"), "--quick", "--dataset", str(DATASETS / "medquad"),
            "--out", str(out)]
    with subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=120)
            pytest.fail(f"the demo took more than {timeout} s: {stdout[-2000:]} {stderr[-2000:]}")
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


@pytest.mark.timeout(2000)
def test_quick_demo_tells_the_story(tmp_path):
    out = tmp_path / "demo"
    done = run_demo(out, timeout=1800)  # about 15 minutes on two AVX2 cores
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    head = summary["headline"]
    assert head["seconds_shift_to_drift_declared"] is not None and head["seconds_shift_to_drift_declared"] > 0
    assert head["promoted"] is not None and head["seconds_shift_to_promotion"] > 0
    assert head["probe_after_recovery"]["mrr@10"] > head["probe_at_dip"]["mrr@10"]
    assert head["failed_requests"] == 0 and head["requests"] > 100
    # admin moves name the person and the credential: "demo (key:admin-token)"
    moves = [(a["action"], a["actor"].split(" ")[0]) for a in summary["audit"] if a["alias"] == "production"]
    assert moves[0] == ("init", "demo") and moves[1] == ("approve", "embedloop-retrain")
    assert moves[-3:] == [("approve", "demo"), ("rollback", "demo"), ("approve", "demo")]
    # the index client: no drop across the promotion in the metric compatibility is measured in
    # (MRR@10; recall@10 on its 60 questions has moved by 2 questions either way), its channel held or
    # following a compatible version; after the reindex its questions and vectors come from the new version
    before, held, rebuilt = (head[f"index_{when}"] for when in ("before_promotion", "after_promotion", "after_reindex"))
    assert before["queries_by"] == "v1" and before["index"] == "index-main__v1"
    assert held["mrr@10"] >= before["mrr@10"] - 0.02
    assert rebuilt["queries_by"] == head["promoted"] and rebuilt["index"] == f"index-main__{head['promoted']}"
    assert rebuilt["mrr@10"] > before["mrr@10"]
    page = (out / "report.html").read_text()
    charts = ("drift", "probes", "latency", "timeline", "stored_index")
    assert page.count("data:image/png;base64,") == 5 and all((out / f"{n}.png").is_file() for n in charts)
    assert f"report: {out / 'report.html'}" in done.stdout.replace("\n", "")
