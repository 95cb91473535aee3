from embedloop.core.labels import split
from embedloop.core.labels.corpus import CorpusStore
from embedloop.core.labels.probes import ProbeQuery, ProbeStore
from embedloop.core.labels.tables import create_label_tables


def test_query_splits_are_deterministic_close_to_the_fraction_and_independent():
    queries = [f"what causes condition number {i}?" for i in range(5000)]
    chosen = [q for q in queries if split.in_share(q, split.PROBES, 0.1)]
    assert 0.08 < len(chosen) / len(queries) < 0.12
    assert chosen == [q for q in queries if split.in_share(q, split.PROBES, 0.1)]
    same = "what causes condition number 1?"
    assert split.in_share("What Causes Condition Number 1?  ", split.PROBES, 0.1) == \
        split.in_share(same, split.PROBES, 0.1)
    assert not any(split.in_share(q, split.PROBES, 0.0) for q in queries[:100])
    validation = {q for q in queries if split.in_share(q, split.VALIDATION, 0.1)}
    assert 0 < len(validation & set(chosen)) < len(chosen) / 4  # salts make the splits independent


def test_feedback_probes_join_imported_ones_by_group(engine):
    store = ProbeStore(engine)
    store.add([ProbeQuery("q1", "What is asthma?", "GARD", ("d1",))],
              {"d1": "Asthma is a chronic disease.", "d2": "Gout is a form of arthritis."})
    store.add([ProbeQuery("f1", "what is gout", "2026-11", ("d2",))], {"d2": "Gout is a form of arthritis."},
              origin="feedback")
    store.add([ProbeQuery("f1", "what is gout", "2026-11", ("d2",))], origin="feedback")  # duplicates ignored
    probes = store.load()
    assert probes.query_ids == ["f1", "q1"] and probes.groups == ["2026-11", "GARD"]
    assert probes.relevant == [{"d2"}, {"d1"}]
    assert store.counts() == {"documents": 2, "probe_queries": 2, "probe_qrels": 2}


def test_queries_without_a_known_document_are_left_out(engine):
    store = ProbeStore(engine)
    store.add([ProbeQuery("q1", "a", "g", ("d1",)), ProbeQuery("q2", "b", "g", ("missing",))], {"d1": "text"})
    assert store.load().query_ids == ["q1"]


def test_a_database_from_before_the_documents_table_keeps_its_documents(tmp_path):
    from sqlalchemy import text

    from embedloop.core.storage.database import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe_docs (doc_id VARCHAR(256) PRIMARY KEY, text TEXT NOT NULL, "
                          "added_at FLOAT NOT NULL)"))
        conn.execute(text("INSERT INTO probe_docs VALUES ('d1', 'kept', 0)"))
    create_label_tables(engine)
    assert CorpusStore(engine).all() == (["d1"], ["kept"])
    engine.dispose()
