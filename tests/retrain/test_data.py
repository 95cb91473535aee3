from types import SimpleNamespace

from embedloop.core.labels.beir import load_beir
from embedloop.core.labels.corpus import CorpusStore
from embedloop.core.labels.feedback import FeedbackItem, FeedbackStore
from embedloop.core.settings import RetrainSettings
from embedloop.retrain.data import assemble, held_out_texts, is_validation


def fill(store, start, n):
    store.add([FeedbackItem(query=f"question {i}", positive_id="d1") for i in range(start, start + n)],
              origin="api", probe_fraction=0.0)


def test_new_pairs_replay_and_a_stable_validation_split(engine):
    CorpusStore(engine).add({"d1": "an answer"})
    store = FeedbackStore(engine)
    fill(store, 0, 400)
    settings = RetrainSettings(replay_ratio=0.5, validation_fraction=0.1, max_validation=1000)
    base = SimpleNamespace(training={})
    first = assemble(store, base, settings, seed=42)
    assert first.replayed == 0 and first.feedback_upto == 400
    assert first.new_train + first.new_validation == first.new_feedback == 400
    assert len(first.validation) == first.new_validation and 20 <= len(first.validation) <= 60
    assert all(is_validation(p.query, 0.1) for p in first.validation)
    assert not {p.query for p in first.train} & {p.query for p in first.validation}

    fill(store, 400, 100)  # a child version trained on the first 400 sees 100 new ones
    child = SimpleNamespace(training={"data": first.summary()})
    second = assemble(store, child, settings, seed=42)
    new = [p for p in second.train if p.feedback_id > 400]
    old = [p for p in second.train if p.feedback_id <= 400]
    assert len(new) == second.new_pairs and 80 <= second.new_pairs <= 100
    assert len(old) == second.replayed == round(0.5 * second.new_pairs)
    assert {p.query for p in first.validation} <= {p.query for p in second.validation}  # still held out
    assert not {p.query for p in second.train} & {p.query for p in second.validation}


def test_nothing_from_the_retention_set_is_ever_trained_on(engine):
    from tests.conftest import DATASETS

    retention = DATASETS / "se_retention"
    held_out = held_out_texts(retention)
    data = load_beir(retention, "test")
    question = next(iter(data.queries.values()))["text"]
    answer = next(iter(data.corpus.values()))
    CorpusStore(engine).add({"d1": "an answer", "se": answer})
    store = FeedbackStore(engine)
    fill(store, 0, 100)
    store.add([FeedbackItem(query=question, positive_id="d1"),  # a retention question …
               FeedbackItem(query="how do I teach fractions", positive_id="se"),  # … a retention answer …
               FeedbackItem(query="what is gout", positive_id="d1", negative_ids=["se"])],  # … as a negative
              origin="api", probe_fraction=0.0)
    got = assemble(store, SimpleNamespace(training={}), RetrainSettings(validation_fraction=0.1), 42, held_out)
    assert got.excluded == 3 and got.new_feedback == 103 and got.new_train + got.new_validation == 100
    trained = {t for p in got.train + got.validation for t in (p.query, p.positive, *p.negatives)}
    assert not {question, answer} & trained
    assert "3 left out (in the retention set)" in got.account("v1")


def test_one_key_may_supply_at_most_its_share_of_a_run(engine):
    CorpusStore(engine).add({"d1": "an answer"})
    store = FeedbackStore(engine)
    store.add([FeedbackItem(query=f"honest {i}", positive_id="d1") for i in range(100)], origin="api",
              probe_fraction=0.0, key="good")
    store.add([FeedbackItem(query=f"flood {i}", positive_id="d1") for i in range(400)], origin="api",
              probe_fraction=0.0, key="flood")
    store.add([FeedbackItem(query=f"imported {i}", positive_id="d1") for i in range(50)], origin="import",
              probe_fraction=0.0)
    base = SimpleNamespace(training={})
    settings = RetrainSettings(validation_fraction=0.05)
    capped = assemble(store, base, settings, seed=1)
    assert capped.capped == {} and capped.by_source["flood"] > 350  # the run caps after screening
    capped.cap(0.25, seed=1)
    by = capped.by_source
    new = sum(by.values())
    assert by["flood"] <= 0.25 * new + 1 and capped.capped["flood"] > 250  # cut to a quarter of what is trained
    assert by["good"] > 80 and by["(no key)"] > 40 and "good" not in capped.capped
    assert capped.new_train == new == len(capped.train)
    assert "from key flood left out (retrain.max_key_share)" in capped.account("v1")
    assert capped.summary()["by_source"] == by
    same = assemble(store, base, settings, seed=1)
    same.cap(0.25, seed=1)
    assert [p.feedback_id for p in same.train] == [p.feedback_id for p in capped.train]  # seeded
    uncapped = assemble(store, base, settings, seed=1)
    uncapped.cap(1.0, seed=1)
    assert uncapped.capped == {} and uncapped.by_source["flood"] > 350


def test_a_key_that_is_the_only_source_of_new_pairs_is_not_capped(engine):
    CorpusStore(engine).add({"d1": "an answer"})
    store = FeedbackStore(engine)
    store.add([FeedbackItem(query=f"only {i}", positive_id="d1") for i in range(200)], origin="api",
              probe_fraction=0.0, key="clinic")
    alone = assemble(store, SimpleNamespace(training={}), RetrainSettings(validation_fraction=0.05), seed=1)
    alone.cap(0.5, seed=1)
    assert alone.capped == {} and alone.by_source == {"clinic": alone.new_train} and alone.new_train > 180
