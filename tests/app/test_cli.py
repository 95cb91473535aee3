import json

import pytest
from typer.testing import CliRunner

from embedloop.app.cli.main import app
from tests.conftest import copy_home, make_state

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
    assert "Warning" not in result.output and "deprecated" not in result.output  # third-party noise kept out
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
    probes_before = run("status", home=tiny_home).output.count("v1")
    scored = run("eval", "--dataset", str(DATASETS / "se_retention"), "--version", "v1", home=tiny_home)
    assert scored.exit_code == 0 and "v1 on se_retention" in scored.output and "matheducators" in scored.output
    assert run("status", home=tiny_home).output.count("v1") == probes_before  # the probe set was not touched
    assert run("eval", "--dataset", str(medquad), "--version", "v9", home=tiny_home).exit_code == 1


def test_corpus_and_feedback_import_report_bad_lines_and_write_all_or_nothing(tiny_home, tmp_path, open_states):
    from tests.conftest import DATASETS

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "d1", "text": "Gout is arthritis."}\n{"id": "d2"}\n')
    refused = run("corpus", "import", str(corpus), home=tiny_home)
    assert refused.exit_code == 1 and "corpus.jsonl:2" in refused.output and "nothing was written" in refused.output
    state = open_states(tiny_home)
    store = state.feedback
    assert state.corpus.all() == ([], [])
    assert run("corpus", "import", str(corpus), "--skip-bad", home=tiny_home).exit_code == 0
    assert state.corpus.all()[0] == ["d1"]

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"query": "What is gout?", "positive_id": "d1"}\n{"query": "x", "positive_id": "d9"}\n')
    unknown = run("feedback", "import", str(pairs), home=tiny_home)
    assert unknown.exit_code == 1 and "d9" in unknown.output and store.count() == 0

    medquad = DATASETS / "medquad"
    assert run("corpus", "import", str(medquad), home=tiny_home).exit_code == 0
    imported = run("feedback", "import", str(medquad), "--split", "test", home=tiny_home)
    assert imported.exit_code == 0, imported.output
    assert store.count() > 2000 and "to the probe set" in imported.output  # 10 % went to probes
    again = run("feedback", "import", str(medquad / "qrels" / "test.tsv"), home=tiny_home)
    assert "0 added to the training pool, 0 to the probe set" in again.output and "duplicates skipped" in again.output


def test_retrain_dry_run_approve_reject_rollback(tiny_home, tiny_base, open_states):
    from embedloop.core.models.versions import register_version
    from tests.conftest import seed_medquad

    state = open_states(tiny_home)
    seed_medquad(state, train_queries=250)
    dry = run("retrain", "--dry-run", home=tiny_home)
    assert dry.exit_code == 0 and "dry-run" in dry.output and "would train v1" in dry.output

    for _ in range(2):
        register_version(state.settings, state.registry, tiny_base)
    state.promotion.mark_candidate("v2")
    state.promotion.mark_candidate("v3")
    assert run("models", "approve", "v1", home=tiny_home).exit_code == 1
    assert "v1 -> v2" in run("models", "approve", "v2", "--reason", "better", home=tiny_home).output
    assert "rejected v3" in run("models", "reject", "v3", "--reason", "worse", home=tiny_home).output
    assert "v2 -> v1" in run("models", "rollback", home=tiny_home).output
    listing = run("models", "list", home=tiny_home).output
    assert "rolled_back" in listing and "rejected" in listing
    history = run("models", "history", home=tiny_home).output
    assert history.index("rollback") < history.index("reject") < history.index("approve")


def test_settings_shows_what_is_in_effect_and_refuses_unknown_ones(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("promotion:\n  policy: auto\nadmin:\n  token: s3cret\n")
    monkeypatch.setenv("EMBEDLOOP_SERVING__PORT", "4123")
    shown = run("settings", home=home)
    assert shown.exit_code == 0 and "policy: auto" in shown.output and "port: 4123" in shown.output
    assert "s3cret" not in shown.output
    (home / "config.yaml").write_text("retrain:\n  policy: auto\n")
    refused = run("settings", home=home)
    assert refused.exit_code == 1 and "retrain.policy" in refused.output and "Traceback" not in refused.output


def test_keys_create_list_revoke_and_purge_refusals(tmp_path):
    home = tmp_path / "home"
    made = run("keys", "create", "--name", "team", "--scopes", "embed,feedback", "--quota",
               "embed_requests_per_s=5", home=home)
    assert made.exit_code == 0 and made.output.strip().splitlines()[-1].startswith("el_")
    listed = runner.invoke(app, ["keys", "list", "--home", str(home)], env={"COLUMNS": "200"})
    assert "team" in listed.output and "embed,feedback" in listed.output and "embed_requests_per_s=5" in listed.output
    assert made.output.strip().splitlines()[-1] not in listed.output
    for args, message in [(["keys", "create", "--name", "x", "--scopes", "write"], "unknown scope"),
                          (["keys", "create", "--name", "y", "--scopes", "embed", "--quota", "rps"],
                           "NAME=WHOLE_NUMBER"),
                          (["keys", "create", "--name", "team", "--scopes", "embed"], "exists already"),
                          (["keys", "revoke", "nobody"], "no key named"),
                          (["feedback", "purge", "--key", "nobody"], "no key named")]:
        refused = run(*args, home=home)
        assert refused.exit_code == 1 and message in refused.output, (args, refused.output)
    changed = run("keys", "quota", "team", "embed_requests_per_s=default", "embed_texts_per_min=600", home=home)
    assert changed.exit_code == 0 and "team: embed_texts_per_min=600" in changed.output
    assert run("keys", "quota", "team", "tokens=5", home=home).exit_code == 1
    assert run("models", "history", home=home).exit_code == 0
    assert run("keys", "revoke", "team", "--reason", "gone", home=home).exit_code == 0
    purged = run("feedback", "purge", "--key", "team", home=home)  # a revoked key's feedback can still go
    assert purged.exit_code == 0 and "0 pairs deleted" in purged.output


def test_serve_refuses_to_open_the_network_without_keys(tmp_path, tiny_registered):
    home = copy_home(tiny_registered, tmp_path)
    refused = run("serve", "--host", "0.0.0.0", home=home)
    assert refused.exit_code == 1 and "no API keys exist" in refused.output and "--allow-open" in refused.output


def test_channels_create_list_reindexed_delete(tiny_home):
    made = run("channels", "create", "index-main", "--reason", "search index", home=tiny_home)
    assert made.exit_code == 0 and "embedloop@index-main" in made.output
    listed = runner.invoke(app, ["channels", "list", "--home", str(tiny_home)], env={"COLUMNS": "200"})
    assert "index-main" in listed.output and "reindex" not in listed.output  # serves production
    assert run("channels", "create", "index-adapt", "--adapt", home=tiny_home).exit_code == 0
    with make_state(tiny_home) as state:
        assert [(c.name, c.adapt) for c in state.channels.list()] == [("index-adapt", True), ("index-main", False)]
    for args, message in [(["channels", "create", "index-main"], "already exists"),
                          (["channels", "create", "v9"], "invalid channel name"),
                          (["channels", "reindexed", "nope", "--to", "v1"], "no channel"),
                          (["channels", "reindexed", "index-main", "--to", "v9"], "unknown version")]:
        refused = run(*args, home=tiny_home)
        assert refused.exit_code == 1 and message in refused.output, (args, refused.output)
    assert run("channels", "reindexed", "index-main", "--to", "v1", home=tiny_home).exit_code == 0
    assert run("channels", "delete", "index-main", "--reason", "retired", home=tiny_home).exit_code == 0
    history = runner.invoke(app, ["models", "history", "--home", str(tiny_home)], env={"COLUMNS": "200"})
    for action in ("channel_create", "channel_reindexed", "channel_delete"):
        assert action in history.output
