from pathlib import Path

from embedloop.core.settings import Privacy, Settings


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


def test_relative_home_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EMBEDLOOP_HOME", raising=False)
    assert Settings().home == Path(tmp_path / ".embedloop").resolve()
