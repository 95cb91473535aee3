"""The model pool's view of production and of index channels: what it serves and exports."""

import asyncio

import httpx
import pytest
from prometheus_client import REGISTRY

from embedloop.core.models.promotion import Promotion
from embedloop.core.settings import PromotionSettings
from embedloop.service.app import create_app
from embedloop.service.pool import CHANNELS_REREAD_S
from embedloop.service.server import Server
from tests.conftest import make_state

pytestmark = pytest.mark.anyio


async def test_after_a_swap_production_exports_how_its_queries_meet_the_replaced_versions_vectors(review_home):
    state = make_state(review_home)
    server = Server(state)
    await server.start()
    try:
        Promotion(state.registry, PromotionSettings()).approve("v2", reason="test")
        assert await server.pool.refresh()
        figures = state.registry.get("v2").metrics["gates"]["compatibility"]
        for figure in ("cross", "own", "older"):
            exported = REGISTRY.get_sample_value("embedloop_version_compatibility",
                                                 {"version": "v2", "against": "v1", "figure": figure})
            assert exported == figures[figure]["mrr@10"]
        adapter = REGISTRY.get_sample_value("embedloop_version_compatibility",
                                            {"version": "v2", "against": "v1", "figure": "adapter"})
        assert adapter == (figures["adapter"]["cross"]["mrr@10"] if figures["adapter"]["served"] else None)
        compatible = REGISTRY.get_sample_value("embedloop_version_compatible", {"version": "v2", "against": "v1"})
        assert compatible == (1.0 if figures["compatible"] else 0.0)
    finally:
        await server.stop()
        state.close()


async def test_a_channel_resolves_to_the_version_it_serves_and_follows_only_when_compatible(review_home):
    state = make_state(review_home)
    state.channels.create("index-main", reason="search index")  # vectors built with v1
    state.channels.create("index-adapt", adapt=True)  # the same, following through adapters
    server = Server(state)
    await server.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(server)), base_url="http://t") as c:
            embed = await c.post("/v1/embeddings", json={"input": "glaucoma", "model": "embedloop@index-main"})
            assert embed.status_code == 200 and embed.json()["model"] == "embedloop@v1"
            missing = await c.post("/v1/embeddings", json={"input": "glaucoma", "model": "embedloop@index-nope"})
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"

            Promotion(state.registry, PromotionSettings()).approve("v2", reason="test")
            await server.pool.refresh()
            await server.pool.refresh_channels()
            figures = state.registry.get("v2").metrics["gates"]["compatibility"]
            compatible = figures["compatible"]
            expected = "v2" if compatible else "v1"  # a channel never moves to an incompatible version
            embed = await c.post("/v1/embeddings", json={"input": "glaucoma", "model": "embedloop@index-main"})
            assert embed.json()["model"] == f"embedloop@{expected}"
            adapting = "v2" if compatible else "v2~v1" if figures["adapter"]["served"] else "v1"
            embed = await c.post("/v1/embeddings", json={"input": "glaucoma", "model": "embedloop@index-adapt"})
            assert embed.status_code == 200 and embed.json()["model"] == f"embedloop@{adapting}"
            direct = await c.post("/v1/embeddings", json={"input": "glaucoma", "model": f"embedloop@{adapting}"})
            assert direct.json()["data"] == embed.json()["data"]
            lagging = REGISTRY.get_sample_value("embedloop_channel_lagging", {"channel": "index-main"})
            assert lagging == (0.0 if compatible else 1.0)
            cards = {m["id"]: m for m in (await c.get("/v1/models")).json()["data"]}
            assert cards["embedloop@index-main"]["version"] == expected and cards["embedloop"]["version"] == "v2"
            assert cards["embedloop@index-adapt"]["version"] == adapting.split("~")[0]
            assert cards["embedloop@index-adapt"].get("adapts_into") == ("v1" if "~" in adapting else None)
    finally:
        await server.stop()
        state.close()


async def test_requests_for_a_channel_that_does_not_exist_re_read_the_channels_at_most_once_a_window(review_home,
                                                                                                    monkeypatch):
    state = make_state(review_home, serving={"alias_poll_s": 3600})  # no re-reads but the requests'
    server = Server(state)
    await server.start()
    try:
        while server.pool._channels_read_at < 0:  # the follow loop's first pass, which reads them once
            await asyncio.sleep(0.05)
        reads = []
        original = server.pool.channels.targets
        monkeypatch.setattr(server.pool.channels, "targets", lambda: reads.append(1) or original())
        server.pool._channels_read_at = -CHANNELS_REREAD_S  # as if the last poll were long ago
        server.pool.channels_reread_s = 600  # a window no slow machine outlasts
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(server)), base_url="http://t") as c:
            for _ in range(20):
                missing = await c.post("/v1/embeddings", json={"input": "x", "model": "embedloop@index-nope"})
                assert missing.status_code == 404
            assert len(reads) == 1
            state.channels.create("index-new", reason="created from the command line")
            server.pool._channels_read_at = -600  # the window over: a new channel is served at once
            embed = await c.post("/v1/embeddings", json={"input": "x", "model": "embedloop@index-new"})
            assert embed.status_code == 200 and embed.json()["model"] == "embedloop@v1" and len(reads) > 1
    finally:
        await server.stop()
        state.close()
