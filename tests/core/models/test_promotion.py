import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from embedloop.core.models.promotion import Promotion
from embedloop.core.models.registry import CANDIDATE, PRODUCTION, Action, Registry, RegistryError, VersionState
from embedloop.core.models.webhook import deliver
from embedloop.core.settings import PromotionSettings


def register(registry, name, state=VersionState.REGISTERED):
    return registry.register(name=name, source="test", artifact_dir=name, files={}, manifest={},
                             metrics={"gates": {"metric": "mrr@10", "passed": True}}, state=state)


def promotion_with_candidate(registry: Registry, settings: PromotionSettings = PromotionSettings()) -> Promotion:
    register(registry, "v1")
    registry.move_alias(PRODUCTION, "v1", action=Action.INIT)
    register(registry, "v2", state=VersionState.CANDIDATE)
    promotion = Promotion(registry, settings)
    promotion.mark_candidate("v2")
    return promotion


@pytest.fixture
def setup(engine):
    registry = Registry(engine)
    return promotion_with_candidate(registry), registry


def test_approve_rollback_and_approve_again_are_audited_in_order(setup):
    promotion, registry = setup
    move = promotion.approve("v2", actor="alice", reason="looks good")
    assert (move.from_version, move.to_version) == ("v1", "v2") and registry.alias(CANDIDATE) is None
    assert registry.state("v2").state == "approved"
    back = promotion.rollback(actor="bob", reason="complaints")
    assert (back.from_version, back.to_version) == ("v2", "v1") and registry.state("v2").state == "rolled_back"
    promotion.approve("v2", actor="alice", reason="fixed upstream")
    entries = [(e.action, e.actor, e.alias, e.from_version, e.to_version) for e in reversed(registry.history())]
    assert entries[-3:] == [("approve", "alice", PRODUCTION, "v1", "v2"), ("rollback", "bob", PRODUCTION, "v2", "v1"),
                            ("approve", "alice", PRODUCTION, "v1", "v2")]
    assert registry.history(1)[0].details["gates"]["metric"] == "mrr@10"


def test_refused_moves_change_nothing(setup):
    promotion, registry = setup
    with pytest.raises(RegistryError, match="registered"):
        promotion.approve("v1")  # never a candidate
    with pytest.raises(RegistryError, match="no earlier version"):
        promotion.rollback()
    with pytest.raises(RegistryError, match="unknown version"):
        promotion.approve("v9")
    promotion.reject("v2", reason="too slow")
    assert registry.state("v2").state == "rejected" and registry.state("v2").reasons == ["too slow"]
    with pytest.raises(RegistryError, match="rejected"):
        promotion.approve("v2")
    with pytest.raises(RegistryError, match="rejected"):
        promotion.rollback(to="v2")
    assert registry.alias(PRODUCTION) == "v1" and registry.alias(CANDIDATE) is None


class Hook(BaseHTTPRequestHandler):
    received: list = []
    answers: list = []

    def do_POST(self):  # noqa: N802
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(Hook.answers.pop(0) if Hook.answers else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_url():
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hook.received.clear()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_webhook_receives_the_promotion_after_retries(tmp_path, hook_url):
    from embedloop.core.storage.database import open_engine

    Hook.answers[:] = [500]  # the first attempt fails, the second gets through
    promotion = promotion_with_candidate(Registry(open_engine(f"sqlite:///{tmp_path / 'r.db'}")),
                                         PromotionSettings(webhook_url=hook_url, webhook_attempts=3))
    promotion.approve("v2", actor="alice", reason="ok")
    for thread in threading.enumerate():
        if thread.name == "webhook":
            thread.join(10)
    assert len(Hook.received) == 2
    assert Hook.received[-1] == {"event": "approve", "actor": "alice", "reason": "ok", "from_version": "v1",
                                      "to_version": "v2", "details": {"gates": {"metric": "mrr@10", "passed": True}}}


def test_a_dead_webhook_gives_up_without_raising(hook_url):
    assert deliver("http://127.0.0.1:9/nothing-listens", {"event": "approve"}, attempts=2, timeout_s=1,
                   backoff_s=0.01) is False
    Hook.answers[:] = [503, 503]
    assert deliver(hook_url, {"event": "rollback"}, attempts=2, timeout_s=1, backoff_s=0.01) is False
    assert len(Hook.received) == 2
