from pathlib import Path

import pytest
from pydantic import ValidationError

from embedloop.core.settings import Privacy, Settings, load_settings


def test_yaml_file_then_environment_then_arguments(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text(
        "serving:\n  max_batch_items: 8\n  port: 4000\nquerylog:\n  privacy: hash\n"
    )
    monkeypatch.setenv("EMBEDLOOP_HOME", str(tmp_path))
    monkeypatch.setenv("EMBEDLOOP_SERVING__PORT", "5000")
    settings = Settings()
    assert settings.home == tmp_path.resolve()
    assert settings.serving.max_batch_items == 8      # from the file
    assert settings.serving.port == 5000              # the environment beats the file
    assert settings.querylog.privacy is Privacy.HASH
    assert settings.registry_url == f"sqlite:///{tmp_path.resolve() / 'registry.db'}"
    assert Settings(serving={"port": 6000}).serving.port == 6000


def test_a_home_given_as_argument_reads_its_own_config_file(tmp_path, monkeypatch):
    elsewhere, mine = tmp_path / "elsewhere", tmp_path / "mine"
    for folder, port in ((elsewhere, 4000), (mine, 4100)):
        folder.mkdir()
        (folder / "config.yaml").write_text(f"serving:\n  port: {port}\n")
    monkeypatch.setenv("EMBEDLOOP_HOME", str(elsewhere))
    assert load_settings(mine).serving.port == 4100
    assert load_settings().serving.port == 4000


def test_relative_home_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EMBEDLOOP_HOME", raising=False)
    assert Settings().home == Path(tmp_path / ".embedloop").resolve()


def test_unknown_or_moved_settings_are_errors(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text("retrain:\n  policy: auto\n")  # now promotion.policy
    with pytest.raises(ValidationError, match="retrain.policy"):
        load_settings(tmp_path)
    (tmp_path / "config.yaml").write_text("promotion:\n  policy: auto\n")
    assert load_settings(tmp_path).promotion.policy == "auto"
    monkeypatch.setenv("EMBEDLOOP_SERVING__MAX_BATCH_ITEM", "8")
    with pytest.raises(ValidationError, match="max_batch_item"):
        load_settings(tmp_path)


def test_shared_models_folder_keeps_its_staging_beside_the_versions(tmp_path):
    settings = load_settings(tmp_path / "home", storage={"models_dir": tmp_path / "shared"})
    assert settings.models_dir == (tmp_path / "shared").resolve()
    assert settings.staging_dir.parent == settings.models_dir  # a finished version is renamed into place
