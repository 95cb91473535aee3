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
