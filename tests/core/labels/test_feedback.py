import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from embedloop.core.labels.corpus import CorpusStore, text_doc_id
from embedloop.core.labels.feedback import FeedbackError, FeedbackItem, FeedbackStore
from embedloop.core.labels.probes import ProbeStore
from embedloop.core.labels.tables import feedback_table


@pytest.fixture
def store(engine):
    CorpusStore(engine).add({"d1": "Glaucoma is a disease of the optic nerve.", "d2": "Asthma narrows the airways.",
                             "d3": "Gout is a kind of arthritis."})
    return FeedbackStore(engine)


def rows(store):
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(feedback_table)).scalar_one()


def test_items_are_stored_with_texts_and_deduplicated(store):
    items = [FeedbackItem(query="What is glaucoma?", positive_id="d1", negative_ids=["d2"]),
             FeedbackItem(query="what is glaucoma? ", positive_id="d1"),  # same query, normalised
             FeedbackItem(query="How is asthma treated?", positive_text="Inhalers treat asthma.",
                          negative_texts=["Gout is treated with diet."], group="lungs")]
    result = store.add(items, origin="api", probe_fraction=0.0)
    assert (result.accepted, result.duplicates, result.to_probes) == (2, 1, 0)
    pairs = store.pairs()
    assert [(p.query, p.positive, p.negatives) for p in pairs] == [
        ("What is glaucoma?", "Glaucoma is a disease of the optic nerve.", ["Asthma narrows the airways."]),
        ("How is asthma treated?", "Inhalers treat asthma.", ["Gout is treated with diet."])]
    ids, _ = CorpusStore(store.engine).all()
    assert text_doc_id("Inhalers treat asthma.") in ids  # a positive given as text joins the corpus
    assert store.pairs(after_id=pairs[0].feedback_id) == pairs[1:]


def test_a_batch_with_an_unknown_document_writes_nothing(store):
    items = [FeedbackItem(query="What is gout?", positive_id="d3"),
             FeedbackItem(query="What is lupus?", positive_id="d404", positive_text=None)]
    with pytest.raises(FeedbackError) as info:
        store.add(items, origin="api", probe_fraction=0.0)
    assert info.value.index == 1 and "d404" in str(info.value)
    assert rows(store) == 0


def test_probe_share_goes_to_the_probe_set_and_never_to_training(store):
    queries = [f"question number {i} about glaucoma" for i in range(200)]
    result = store.add([FeedbackItem(query=q, positive_id="d1", group="eyes") for q in queries], origin="api",
                       probe_fraction=0.25)
    assert 25 <= result.to_probes <= 75 and result.accepted == 200
    probes = ProbeStore(store.engine).load()
    trained = {p.query for p in store.pairs()}
    assert len(probes.query_ids) == result.to_probes and not trained & set(probes.query_texts)
    assert set(probes.groups) == {"eyes"} and len(trained) == 200 - result.to_probes


@pytest.mark.parametrize("record, message", [
    ({"query": "q"}, "exactly one of positive_id and positive_text"),
    ({"query": "q", "positive_id": "d1", "positive_text": "x"}, "exactly one"),
    ({"query": "   ", "positive_id": "d1"}, "blank"),
    ({"query": 3, "positive_id": "d1"}, "string"),
    ({"query": "q", "positive_id": "d1", "extra": 1}, "Extra inputs"),
])
def test_item_validation(record, message):
    with pytest.raises(ValidationError, match=message):
        FeedbackItem.model_validate(record)


def test_the_probe_split_is_keyed_by_a_secret_of_the_installation(tmp_path):
    from embedloop.core.labels import split
    from embedloop.core.storage.database import open_engine

    stores = [FeedbackStore(open_engine(f"sqlite:///{tmp_path / name}.db")) for name in ("a", "b")]
    assert stores[0].probe_secret != stores[1].probe_secret and len(stores[0].probe_secret) == 32
    again = FeedbackStore(stores[0].engine)
    assert again.probe_secret == stores[0].probe_secret  # stable for one installation
    queries = [f"what causes condition {i}?" for i in range(2000)]
    chosen = [{q for q in queries if split.in_share(q, split.PROBES, 0.1, s.probe_secret)} for s in stores]
    public = {q for q in queries if split.in_share(q, split.PROBES, 0.1)}
    assert all(150 <= len(c) <= 250 for c in chosen)
    # knowing the code (the unkeyed hash) no longer tells a sender where its feedback goes
    assert len(chosen[0] & public) < 50 and len(chosen[0] & chosen[1]) < 50


def test_feedback_keeps_its_key_and_a_daily_quota_counts_it(store):
    from embedloop.core.labels.feedback import DailyQuotaExceeded

    items = [FeedbackItem(query=f"question {i}", positive_id="d1") for i in range(8)]
    store.add(items[:5], origin="api", probe_fraction=0.0, key="team", daily_limit=6)
    assert {p.key for p in store.pairs()} == {"team"}
    with pytest.raises(DailyQuotaExceeded) as refused:
        store.add(items[5:], origin="api", probe_fraction=0.0, key="team", daily_limit=6)
    assert 86_000 < refused.value.retry_after_s <= 86_400 and rows(store) == 5  # nothing of the batch written
    store.add(items[5:], origin="api", probe_fraction=0.0, key="other", daily_limit=6)  # another key's own day
    assert rows(store) == 8


def test_purge_deletes_untrained_pairs_marks_trained_ones_and_drops_probe_judgements(store):
    probes = ProbeStore(store.engine)
    honest = [FeedbackItem(query=f"honest {i}", positive_id="d1") for i in range(4)]
    store.add(honest, origin="api", probe_fraction=0.0, key="good")
    bad = [FeedbackItem(query=f"poison {i}", positive_id="d3") for i in range(6)]
    store.add(bad[:3], origin="api", probe_fraction=0.0, key="bad")  # ids 5-7: a version trains up to id 6
    store.add(bad[3:], origin="api", probe_fraction=1.0, key="bad")  # all three become probe judgements
    store.add([FeedbackItem(query="poison 3", positive_id="d1")], origin="api", probe_fraction=1.0, key="good")
    before = len(probes.load().query_ids)
    result = store.purge("bad", trained_upto=6)
    assert (result.deleted_pairs, result.marked_pairs, result.deleted_probes) == (1, 2, 3)
    assert {p.query for p in store.pairs()} == {f"honest {i}" for i in range(4)}  # marked ones are never used
    assert rows(store) == 6  # ... but stay, for lineage
    kept = probes.load()
    assert len(kept.query_ids) == before - 2  # "poison 3" stays: another key's judgement of it remains
    assert all("d3" not in relevant for relevant in kept.relevant)
    assert store.purge("bad", trained_upto=6) == type(result)(0, 0, 0)


def test_a_database_from_before_keys_gains_the_new_columns_and_keeps_its_rows(tmp_path):
    from sqlalchemy import text

    from embedloop.core.storage.database import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:  # the feedback table as it was before API keys
        conn.execute(text('CREATE TABLE feedback (id INTEGER PRIMARY KEY, query_hash VARCHAR(64) NOT NULL, '
                          'query TEXT NOT NULL, doc_id VARCHAR(256) NOT NULL, negative_ids JSON NOT NULL, '
                          '"group" VARCHAR(128) NOT NULL, origin VARCHAR(32) NOT NULL, added_at FLOAT NOT NULL, '
                          'UNIQUE (query_hash, doc_id))'))
        conn.execute(text("INSERT INTO feedback VALUES (1, 'h', 'old question', 'd1', '[]', 'g', 'import', 1.0)"))
    CorpusStore(engine).add({"d1": "an answer"})
    store = FeedbackStore(engine)
    store.add([FeedbackItem(query="new question", positive_id="d1")], origin="api", probe_fraction=0.0, key="k")
    assert [(p.query, p.key) for p in store.pairs()] == [("old question", None), ("new question", "k")]
    FeedbackStore(engine)  # opening again changes nothing
