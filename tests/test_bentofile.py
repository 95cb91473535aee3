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
