"""Two `embedloop serve` replicas on one PostgreSQL registry and a shared models folder follow a
promotion made from a third place, each within ``serving.alias_poll_s``."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from embedloop.core.models.promotion import ensure_production
from embedloop.core.models.versions import register_version
from tests.conftest import make_state
from tests.servers import start_server

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
POLL_S = 1.0


def version_served(url: str) -> str:
    response = httpx.post(f"{url}/v1/embeddings", json={"input": "chest pain", "model": "embedloop"}, timeout=10)
    assert response.status_code == 200
    return response.headers["x-embedloop-version"]


def test_replicas_on_one_postgres_registry_follow_one_promotion(tmp_path, tiny_base, postgres_url):
    shared = tmp_path / "shared-models"
    storage = {"registry_url": postgres_url, "models_dir": shared}
    with make_state(tmp_path / "registrar", storage=storage) as state:
        v1 = register_version(state.settings, state.registry, tiny_base)
        ensure_production(state.registry, v1.name)
        v2 = register_version(state.settings, state.registry, tiny_base)
    env = {"EMBEDLOOP_STORAGE__REGISTRY_URL": postgres_url, "EMBEDLOOP_STORAGE__MODELS_DIR": str(shared),
           "EMBEDLOOP_SERVING__ALIAS_POLL_S": str(POLL_S)}
    replicas = [start_server(tmp_path / name, tmp_path / f"{name}.log", env=env) for name in ("a", "b")]
    try:
        for replica in replicas:
            assert version_served(replica.url) == "v1"
            pinned = httpx.post(f"{replica.url}/v1/embeddings", json={"input": "x", "model": f"embedloop@{v2.name}"})
            assert pinned.status_code == 200  # loaded and checked now, so the swap below is only the poll
        promote = subprocess.run(
            [str(Path(sys.executable).parent / "embedloop"), "models", "promote", v2.name, "--reason", "replicas",
             "--home", str(tmp_path / "approver")], capture_output=True, text=True, timeout=120,
            env={**os.environ, **env})
        assert promote.returncode == 0, promote.stdout + promote.stderr
        promoted_at = time.monotonic()
        followed = {}
        while len(followed) < len(replicas) and time.monotonic() - promoted_at < 30:
            for replica in replicas:
                if replica.url not in followed and version_served(replica.url) == v2.name:
                    followed[replica.url] = time.monotonic() - promoted_at
            time.sleep(0.05)
    finally:
        for replica in replicas:
            replica.stop()
    assert len(followed) == 2, followed
    assert max(followed.values()) <= POLL_S + 0.5, followed  # one poll interval, plus this loop's own steps
