from embedloop.core.probes import ProbeStore, goes_to_probes


def test_feedback_split_is_deterministic_and_close_to_the_fraction():
    queries = [f"what causes condition number {i}?" for i in range(5000)]
    chosen = [q for q in queries if goes_to_probes(q, 0.1)]
    assert 0.08 < len(chosen) / len(queries) < 0.12
    assert chosen == [q for q in queries if goes_to_probes(q, 0.1)]
    same = "what causes condition number 1?"
    assert goes_to_probes("What Causes Condition Number 1?  ", 0.1) == goes_to_probes(same, 0.1)
    assert not any(goes_to_probes(q, 0.0) for q in queries[:100])


def test_feedback_probes_join_imported_ones_by_group(tmp_path):
    store = ProbeStore(f"sqlite:///{tmp_path / 'm.db'}")
    store.add({"d1": "Asthma is a chronic disease.", "d2": "Gout is a form of arthritis."},
              [("q1", "What is asthma?", "GARD")], [("q1", "d1")], origin="import")
    store.add({"d2": "Gout is a form of arthritis."}, [("f1", "what is gout", "2026-11")], [("f1", "d2")],
              origin="feedback")
    store.add({}, [("f1", "what is gout", "2026-11")], [("f1", "d2")], origin="feedback")  # duplicates ignored
    probes = store.load()
    assert probes.query_ids == ["f1", "q1"] and probes.groups == ["2026-11", "GARD"]
    assert probes.relevant == [{"d2"}, {"d1"}]
    assert store.counts() == {"probe_docs": 2, "probe_queries": 2, "probe_qrels": 2}


def test_queries_without_a_known_document_are_left_out(tmp_path):
    store = ProbeStore(f"sqlite:///{tmp_path / 'm.db'}")
    store.add({"d1": "text"}, [("q1", "a", "g"), ("q2", "b", "g")], [("q1", "d1"), ("q2", "missing")], "import")
    assert store.load().query_ids == ["q1"]
