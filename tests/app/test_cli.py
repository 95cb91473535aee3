import json

import pytest
from typer.testing import CliRunner

from embedloop.app.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_environment(monkeypatch):
    """The CLI exports EMBEDLOOP_HOME / BENTOML_HOME for its children; keep that out of other tests."""
    for name in ("EMBEDLOOP_HOME", "BENTOML_HOME"):
        monkeypatch.delenv(name, raising=False)


def run(*args, home):
    return runner.invoke(app, [*args, "--home", str(home)], catch_exceptions=False)


def test_init_list_show_promote_history(tmp_path, tiny_base):
    home = tmp_path / "home"
    result = run("init", "--base", str(tiny_base), home=home)
    assert result.exit_code == 0, result.output
    assert "registered v1" in result.output and "production -> v1" in result.output
    again = run("init", home=home)
    assert again.exit_code == 0 and "already initialised" in again.output

    assert run("init", "--base", str(tiny_base), home=home).exit_code == 0  # a second version
    listing = run("models", "list", home=home)
    assert "v1" in listing.output and "v2" in listing.output and "production" in listing.output

    shown = json.loads(run("models", "show", "v2", home=home).output)
    assert shown["version"] == "v2" and shown["aliases"] == [] and shown["manifest"]["dimensions"] == 32

    promoted = run("models", "promote", "v2", "--reason", "try it", home=home)
    assert promoted.exit_code == 0 and "v1 -> v2" in promoted.output
    history = run("models", "history", home=home).output
    assert "promote" in history and "try it" in history


def test_errors_exit_nonzero_with_a_message(tmp_path, tiny_base):
    home = tmp_path / "home"
    assert run("init", "--base", str(tiny_base), home=home).exit_code == 0
    result = run("models", "promote", "v9", home=home)
    assert result.exit_code == 1 and "unknown version" in result.output
    assert run("models", "show", "v9", home=home).exit_code == 1
    missing = run("init", "--base", str(tmp_path / "nope"), home=home)
    assert missing.exit_code == 1 and "is not a folder" in missing.output


def test_serve_refuses_an_empty_state_folder(tmp_path):
    result = run("serve", home=tmp_path / "empty")
    assert result.exit_code == 1 and "embedloop init" in result.output


def test_probe_import_run_drift_check_and_status(tiny_home):
    from tests.conftest import DATASETS

    medquad = DATASETS / "medquad"
    if not medquad.is_dir():
        pytest.skip("shared datasets not present")
    imported = run("probe", "import", str(medquad), "--limit", "40", home=tiny_home)
    assert imported.exit_code == 0 and "imported 40 probe queries" in imported.output
    probe = run("probe", "run", home=tiny_home)
    assert probe.exit_code == 0 and "recall@10" in probe.output and "per group" in probe.output
    drift = run("drift", "check", home=tiny_home)
    assert drift.exit_code == 0 and "waiting" in drift.output  # no traffic logged yet
    status = run("status", home=tiny_home)
    assert status.exit_code == 0 and "production: v1" in status.output and "probe checks" in status.output
    bad = run("probe", "import", str(medquad / "qrels"), home=tiny_home)
    assert bad.exit_code == 1 and "BEIR layout expected" in bad.output
