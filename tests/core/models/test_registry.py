import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from embedloop.core.models.registry import PRODUCTION, Action, Registry, RegistryError, UnknownVersion, VersionState


def register(registry: Registry, name: str) -> None:
    registry.register(name=name, source="/base", artifact_dir=name, files={"a": "0" * 64},
                      manifest={"dimensions": 4})


@pytest.fixture
def registry(engine) -> Registry:
    return Registry(engine)


def test_version_names_count_up(registry):
    assert registry.next_version_name() == "v1"
    register(registry, "v1")
    register(registry, "v2")
    assert registry.next_version_name() == "v3"
    assert [v.name for v in registry.versions()] == ["v1", "v2"]
    assert registry.state("v1").state == VersionState.REGISTERED


def test_a_version_name_cannot_be_registered_twice(registry):
    register(registry, "v1")
    with pytest.raises(RegistryError, match="already exists"):
        register(registry, "v1")


def test_alias_moves_are_audited_in_order(registry):
    register(registry, "v1")
    register(registry, "v2")
    first = registry.move_alias(PRODUCTION, "v1", action=Action.INIT, actor="alice", reason="first")
    second = registry.move_alias(PRODUCTION, "v2", actor="bob", reason="better")
    assert (first.from_version, first.to_version) == (None, "v1")
    assert (second.from_version, second.to_version) == ("v1", "v2")
    assert registry.alias(PRODUCTION) == "v2"
    moves = [e for e in reversed(registry.history()) if e.alias == PRODUCTION]
    assert [(e.actor, e.action, e.from_version, e.to_version, e.reason) for e in moves] == [
        ("alice", "init", None, "v1", "first"),
        ("bob", "promote", "v1", "v2", "better"),
    ]


def test_a_refused_transition_changes_nothing(registry):
    register(registry, "v1")
    register(registry, "v2")
    registry.move_alias(PRODUCTION, "v1")
    entries = len(registry.history())
    with pytest.raises(UnknownVersion, match="unknown version"):
        registry.move_alias(PRODUCTION, "v7")
    with pytest.raises(RegistryError, match="v2 is registered; approve needs it to be candidate"):
        with registry.transition("v2", Action.APPROVE) as t:
            t.point(PRODUCTION)  # moved inside the transaction …
            t.expect_state(VersionState.CANDIDATE)  # … and undone when a check fails after it
    assert registry.alias(PRODUCTION) == "v1" and len(registry.history()) == entries


def test_a_state_change_alone_is_audited_once(registry):
    register(registry, "v1")
    with registry.transition("v1", Action.REJECT, actor="ana", reason="worse") as t:
        t.set_state(VersionState.REJECTED, reasons=["worse"])
    assert registry.state("v1").state == "rejected" and registry.state("v1").reasons == ["worse"]
    entry = registry.history(1)[0]
    assert (entry.action, entry.actor, entry.alias, entry.to_version) == ("reject", "ana", None, "v1")


def test_audit_log_is_append_only(registry):
    register(registry, "v1")
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with registry.engine.begin() as conn, pytest.raises(DatabaseError, match="append-only"):
            conn.execute(text(statement))
    assert registry.history()[0].actor != "mallory" and len(registry.history()) == 1


def test_unknown_version_lookup_is_an_error(registry):
    with pytest.raises(UnknownVersion, match="unknown version"):
        registry.get("v1")
