import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from embedloop.core.registry import PRODUCTION, Registry, RegistryError


def register(registry: Registry, name: str) -> None:
    registry.register(name=name, source="/base", artifact_dir=name, files={"a": "0" * 64},
                      manifest={"dimensions": 4})


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(f"sqlite:///{tmp_path / 'registry.db'}")


def test_version_names_count_up(registry):
    assert registry.next_version_name() == "v1"
    register(registry, "v1")
    register(registry, "v2")
    assert registry.next_version_name() == "v3"
    assert [v.name for v in registry.versions()] == ["v1", "v2"]


def test_a_version_name_cannot_be_registered_twice(registry):
    register(registry, "v1")
    with pytest.raises(RegistryError, match="already exists"):
        register(registry, "v1")


def test_alias_moves_are_audited_in_order(registry):
    register(registry, "v1")
    register(registry, "v2")
    first = registry.move_alias(PRODUCTION, "v1", action="init", actor="alice", reason="first")
    second = registry.move_alias(PRODUCTION, "v2", actor="bob", reason="better")
    assert (first.from_version, first.to_version) == (None, "v1")
    assert (second.from_version, second.to_version) == ("v1", "v2")
    assert registry.alias(PRODUCTION) == "v2"
    moves = [e for e in reversed(registry.history()) if e.alias == PRODUCTION]
    assert [(e.actor, e.action, e.from_version, e.to_version, e.reason) for e in moves] == [
        ("alice", "init", None, "v1", "first"),
        ("bob", "promote", "v1", "v2", "better"),
    ]


def test_moving_an_alias_to_an_unknown_version_changes_nothing(registry):
    register(registry, "v1")
    registry.move_alias(PRODUCTION, "v1")
    entries = len(registry.history())
    with pytest.raises(RegistryError, match="unknown version"):
        registry.move_alias(PRODUCTION, "v7")
    assert registry.alias(PRODUCTION) == "v1"
    assert len(registry.history()) == entries


def test_audit_log_is_append_only(registry):
    register(registry, "v1")
    with registry.engine.begin() as conn, pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("UPDATE audit_log SET actor = 'mallory'"))
    with registry.engine.begin() as conn, pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("DELETE FROM audit_log"))
    assert registry.history()[0].actor != "mallory"


def test_unknown_version_lookup_is_an_error(registry):
    with pytest.raises(RegistryError, match="unknown version"):
        registry.get("v1")
