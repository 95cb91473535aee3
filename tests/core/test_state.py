from embedloop.core.state import State
from tests.conftest import make_settings


def test_stores_on_one_database_share_one_engine_and_close_together(tmp_path):
    state = State(make_settings(tmp_path))
    assert state.feedback.engine is state.probes.engine is state.runs.engine is state.checks.engine
    assert state.registry.engine is not state.feedback.engine  # registry.db and monitoring.db
    assert state.registry is state.registry  # opened once
    state.close()
    assert state.registry.history() == []  # reopened on use after close
    state.close()


def test_every_store_can_live_on_one_database(on_database, tmp_path):
    with State(make_settings(tmp_path, **on_database)) as state:
        engines = {id(store.engine) for store in (state.registry, state.feedback, state.querylog, state.runs)}
        assert len(engines) == 1 and state.registry.versions() == [] and state.querylog.count_requests() == 0
