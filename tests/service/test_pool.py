"""The model pool's view of production: the compatibility figures it exports after a swap."""

import pytest
from prometheus_client import REGISTRY

from embedloop.core.models.promotion import Promotion
from embedloop.core.settings import PromotionSettings
from embedloop.service.server import Server
from tests.conftest import make_state

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


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
        compatible = REGISTRY.get_sample_value("embedloop_version_compatible", {"version": "v2", "against": "v1"})
        assert compatible == (1.0 if figures["compatible"] else 0.0)
    finally:
        await server.stop()
        state.close()
