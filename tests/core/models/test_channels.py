"""Index channels: they follow production only to versions measured compatible with the version
their vectors were built with; otherwise they hold and the audit log says a reindex is needed."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from embedloop.core.models.channels import Channels
from embedloop.core.models.promotion import Promotion
from embedloop.core.models.registry import PRODUCTION, Action, Registry, RegistryError, VersionState
from embedloop.core.settings import PromotionSettings


def register(registry, name, against=None, cross=None, older=0.70, state=VersionState.CANDIDATE, adapter=None):
    """A version whose gates measured its queries against ``against``'s vectors at MRR@10 ``cross``
    (and, with ``adapter``, registered a query adapter into its space that measured that)."""
    gates, files = {"metric": "mrr@10", "passed": True}, {}
    if against:
        gates |= {"against": against, "compatibility": {
            "metric": "mrr@10", "tolerance": 0.0, "cross": {"mrr@10": cross}, "own": {"mrr@10": 0.9},
            "older": {"mrr@10": older}, "compatible": cross >= older, "kept_gain": None}}
    if adapter:
        gates["compatibility"]["adapter"] = {"cross": {"mrr@10": adapter}, "served": True}
        files[f"adapter-{against}.npy"] = "0" * 64
    registry.register(name=name, source="test", artifact_dir=name, files=files, manifest={},
                      metrics={"gates": gates}, state=state)


@pytest.fixture
def setup(engine):
    registry = Registry(engine)
    register(registry, "v1", state=VersionState.REGISTERED)
    registry.move_alias(PRODUCTION, "v1", action=Action.INIT)
    promotion = Promotion(registry, PromotionSettings())
    return registry, promotion, promotion.channels


def test_a_channel_follows_a_compatible_version_and_holds_before_an_incompatible_one(setup):
    registry, promotion, channels = setup
    channels.create("index-main", actor="ops", reason="search index")
    assert channels.get("index-main").serves == channels.get("index-main").built_with == "v1"

    register(registry, "v2", against="v1", cross=0.78)  # compatible with v1's vectors
    promotion.approve("v2", reason="better")
    main = channels.get("index-main")
    assert (main.serves, main.built_with) == ("v2", "v1")
    follow = registry.history(1)[0]
    assert (follow.action, follow.alias, follow.from_version, follow.to_version) == ("channel_follow", "index-main",
                                                                                     "v1", "v2")

    register(registry, "v3", against="v2", cross=0.95)  # measured against v2's vectors, not v1's
    promotion.approve("v3", reason="better still")
    assert channels.get("index-main").serves == "v2" and registry.alias(PRODUCTION) == "v3"
    needed = registry.history(1)[0]
    assert needed.action == "reindex_needed" and needed.details == {
        "channel": "index-main", "built_with": "v1", "production": "v3", "adapter": None}
    assert "not measured against v1" in needed.reason

    channels.reindexed("index-main", "v3", reason="index rebuilt")
    main = channels.get("index-main")
    assert (main.serves, main.built_with) == ("v3", "v3")


def test_an_incompatible_version_never_takes_a_channel_and_a_rollback_brings_it_back(setup):
    registry, promotion, channels = setup
    channels.create("index-main")
    channels.create("index-fresh")
    register(registry, "v2", against="v1", cross=0.40)  # measured: v2's queries miss v1's vectors
    promotion.approve("v2", reason="much better on its own vectors")
    assert channels.targets() == {"index-fresh": "v1", "index-main": "v1"}
    assert [e.action for e in registry.history(3)] == ["reindex_needed", "reindex_needed", "approve"]

    channels.reindexed("index-fresh", "v2")
    promotion.rollback(reason="complaints")
    # index-main (built with v1) serves v1 all along; index-fresh (built with v2) cannot go back to v1
    assert channels.targets() == {"index-fresh": "v2", "index-main": "v1"}
    assert registry.history(1)[0].action == "reindex_needed"


def test_a_held_channel_is_told_of_the_query_adapter_into_its_vectors_space(setup):
    registry, promotion, channels = setup
    channels.create("index-main")
    register(registry, "v2", against="v1", cross=0.60, adapter=0.74)  # incompatible; its adapter is not
    promotion.approve("v2", reason="better")
    assert channels.get("index-main").serves == "v1"  # a channel serves versions, never an adapter on its own
    needed = registry.history(2)[0]
    assert needed.action == "reindex_needed" and needed.details["adapter"] == "v2~v1"
    assert "meanwhile embedloop@v2~v1" in needed.reason and "mrr@10 0.7400" in needed.reason


def test_an_adapting_channel_follows_through_the_adapter_until_a_reindex_or_a_rollback(setup):
    registry, promotion, channels = setup
    channels.create("index-main", adapt=True)
    channels.create("index-plain")
    register(registry, "v2", against="v1", cross=0.60, adapter=0.74)
    promotion.approve("v2", reason="better")
    assert channels.targets() == {"index-main": "v2~v1", "index-plain": "v1"}
    main = channels.get("index-main")
    assert (main.serves, main.built_with, main.adapt) == ("v2~v1", "v1", True)
    follow = next(e for e in registry.history(4) if e.action == "channel_follow")
    assert follow.alias == "index-main" and "follows through embedloop@v2~v1" in follow.reason

    register(registry, "v3", against="v2", cross=0.50, adapter=0.80)  # its adapter maps into v2's space, not v1's
    promotion.approve("v3", reason="better still")
    assert channels.targets() == {"index-main": "v2~v1", "index-plain": "v1"}
    needed = next(e for e in registry.history(3) if e.alias == "index-main")
    assert needed.action == "reindex_needed" and "stays on v2~v1" in needed.reason

    promotion.rollback(reason="back to v2")  # v2 again: the channel already serves it through the adapter
    assert channels.get("index-main").serves == "v2~v1"
    promotion.rollback(to="v1", reason="back to v1")  # the version that built its vectors: served plainly again
    assert channels.targets() == {"index-main": "v1", "index-plain": "v1"}

    promotion.approve("v2", reason="again")
    channels.reindexed("index-main", "v2")
    assert channels.get("index-main").serves == "v2"  # its vectors are v2's now: no adapter


def test_channels_stored_before_adapters_existed_are_read_and_follow_plainly(engine):
    from sqlalchemy import text

    registry = Registry(engine)
    register(registry, "v1", state=VersionState.REGISTERED)
    registry.move_alias(PRODUCTION, "v1", action=Action.INIT)
    with engine.begin() as conn:  # the table as an earlier release created it
        conn.execute(text("DROP TABLE channels"))
        conn.execute(text("CREATE TABLE channels (name VARCHAR(64) PRIMARY KEY, built_with VARCHAR NOT NULL "
                          "REFERENCES model_versions(name), created_at TIMESTAMP WITH TIME ZONE)"))
        conn.execute(text("INSERT INTO channels VALUES ('index-old', 'v1', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO aliases (name, version, updated_at) "
                          "VALUES ('index-old', 'v1', CURRENT_TIMESTAMP)"))
    promotion = Promotion(registry, PromotionSettings())
    old = promotion.channels.get("index-old")
    assert (old.serves, old.built_with, old.adapt) == ("v1", "v1", False)
    register(registry, "v2", against="v1", cross=0.60, adapter=0.74)
    promotion.approve("v2", reason="better")
    assert promotion.channels.targets() == {"index-old": "v1"}  # adapting is opt-in


def test_channel_names_and_moves_are_checked(setup):
    registry, _, channels = setup
    for bad in ("production", "candidate", "v7", "Index", "has space", ""):
        with pytest.raises(RegistryError):
            channels.create(bad)
    channels.create("index-main")
    with pytest.raises(RegistryError, match="already exists"):
        channels.create("index-main")
    with pytest.raises(RegistryError, match="no channel"):
        channels.reindexed("index-other", "v1")
    channels.delete("index-main", reason="retired")
    assert channels.list() == [] and "index-main" not in registry.aliases()
    assert registry.history(1)[0].action == "channel_delete"


def test_a_held_channel_is_announced_on_the_webhook(engine):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        registry = Registry(engine)
        register(registry, "v1", state=VersionState.REGISTERED)
        registry.move_alias(PRODUCTION, "v1", action=Action.INIT)
        promotion = Promotion(registry, PromotionSettings(webhook_url=f"http://127.0.0.1:{server.server_port}/"))
        Channels(registry).create("index-main")
        register(registry, "v2", against="v1", cross=0.40, adapter=0.75)
        promotion.approve("v2", reason="r")
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    events = {e["event"]: e for e in received}
    assert set(events) == {"approve", "reindex_needed"}
    assert events["reindex_needed"]["details"] == {"channel": "index-main", "built_with": "v1", "production": "v2",
                                                   "adapter": "v2~v1"}  # what its clients can use meanwhile
