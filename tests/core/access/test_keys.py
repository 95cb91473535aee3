import pytest
from sqlalchemy import select, text

from embedloop.core.access.keys import (
    AccessError,
    KeyConflict,
    KeyRow,
    KeyStore,
    Scope,
    UnknownKey,
    digest_of,
    parse_scopes,
)
from embedloop.core.models.registry import Registry


@pytest.fixture
def store(engine):
    return KeyStore(Registry(engine))


def test_a_key_is_stored_as_a_digest_and_audited(store):
    key, secret = store.create("search-team", parse_scopes("embed,feedback"), quotas={"embed_requests_per_s": 5},
                               actor="ops", reason="new client")
    assert secret.startswith(f"el_{key.key_id}_") and len(secret) > 40
    assert key.scopes == {Scope.EMBED, Scope.FEEDBACK} and key.quotas == {"embed_requests_per_s": 5}
    with store.registry.engine.connect() as conn:
        dumped = " ".join(str(v) for row in conn.execute(text("SELECT * FROM api_keys")) for v in row)
    assert secret not in dumped and digest_of(secret) in dumped
    active, keyed = store.by_digest()
    assert keyed and active[digest_of(secret)].name == "search-team"
    entry = store.registry.history(1)[0]
    assert (entry.action, entry.actor, entry.reason) == ("key_create", "ops", "new client")
    assert entry.details["key"] == "search-team" and secret not in str(entry.details)


def test_revoked_keys_stay_listed_and_keep_the_service_keyed(store):
    _, secret = store.create("a", frozenset({Scope.EMBED}))
    store.revoke("a", actor="ops", reason="leaked")
    active, keyed = store.by_digest()
    assert active == {} and keyed  # revoking the last key does not open the service again
    assert [k.name for k in store.keys()] == ["a"] and not store.keys()[0].active
    assert [(e.action, e.reason) for e in store.registry.history(2)] == [("key_revoke", "leaked"),
                                                                         ("key_create", "")]
    with pytest.raises(KeyConflict):
        store.revoke("a")
    with pytest.raises(KeyConflict):
        store.create("a", frozenset({Scope.EMBED}))  # a revoked key keeps its name
    with pytest.raises(UnknownKey):
        store.revoke("nobody")


@pytest.mark.parametrize("name, scopes, quotas", [
    ("bad name!", "embed", {}), ("ok", "", {}), ("ok", "embed,write", {}),
    ("ok", "embed", {"tokens_per_s": 3}), ("ok", "embed", {"embed_requests_per_s": -1}),
    ("ok", "embed", {"embed_requests_per_s": 1.5})])
def test_bad_key_requests_are_refused_and_write_nothing(store, name, scopes, quotas):
    with pytest.raises(AccessError):
        store.create(name, parse_scopes(scopes), quotas=quotas)
    with store.registry.session() as s:
        assert s.scalars(select(KeyRow)).all() == []
    assert store.registry.history() == []


def test_a_keys_quotas_change_without_changing_its_secret(store):
    _, secret = store.create("a", frozenset({Scope.EMBED}), quotas={"embed_requests_per_s": 5})
    changed = store.set_quotas("a", {"embed_requests_per_s": None, "feedback_items_per_day": 10}, actor="ops")
    assert changed.quotas == {"feedback_items_per_day": 10}
    assert store.by_digest()[0][digest_of(secret)].quotas == {"feedback_items_per_day": 10}
    entry = store.registry.history(1)[0]
    assert entry.action == "key_quotas" and entry.details["from"] == {"embed_requests_per_s": 5}
    with pytest.raises(AccessError):
        store.set_quotas("a", {"tokens": 1})
    with pytest.raises(UnknownKey):
        store.set_quotas("b", {"embed_requests_per_s": 1})
