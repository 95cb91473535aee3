"""Evaluating an encoder exactly as served: probe-set retrieval and STS correlation.

Shared by the probe check (monitoring) and the promotion gates (retrain). Corpus embeddings are
cached per (graph checksum, corpus fingerprint): a version's corpus is embedded once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from embedloop.core.encoder import OnnxEncoder
from embedloop.core.probes import ProbeSet
from embedloop.core.retrieval import evaluate


def encode_in_chunks(encoder: OnnxEncoder, texts: list[str], progress=None, chunk: int = 512) -> np.ndarray:
    parts = []
    for start in range(0, len(texts), chunk):
        parts.append(encoder.encode(texts[start : start + chunk]))
        if progress is not None:
            progress(min(start + chunk, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.empty((0, encoder.dimensions), dtype=np.float32)


def corpus_fingerprint(doc_ids: list[str], doc_texts: list[str]) -> str:
    digest = hashlib.sha256()
    for doc_id, text in zip(doc_ids, doc_texts):
        digest.update(doc_id.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()[:16]


def cached_corpus_embeddings(encoder: OnnxEncoder, model_key: str, doc_ids: list[str], doc_texts: list[str],
                             cache_dir: Path, progress=None) -> np.ndarray:
    path = Path(cache_dir) / f"{model_key}-{corpus_fingerprint(doc_ids, doc_texts)}.npy"
    if path.is_file():
        return np.load(path)
    vectors = encode_in_chunks(encoder, doc_texts, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


def evaluate_probes(encoder: OnnxEncoder, model_key: str, probes: ProbeSet, cache_dir: Path,
                    progress=None, subset: np.ndarray | None = None) -> dict:
    """Overall and per-group retrieval metrics; ``subset`` limits the queries (indices)."""
    if not probes.query_ids:
        raise ValueError("the probe set is empty: import one with `embedloop probe import`")
    docs = cached_corpus_embeddings(encoder, model_key, probes.doc_ids, probes.doc_texts, cache_dir, progress)
    idx_all = np.arange(len(probes.query_ids)) if subset is None else np.asarray(subset)
    queries = encoder.encode([probes.query_texts[i] for i in idx_all])
    relevant = [probes.relevant[i] for i in idx_all]
    overall = evaluate(queries, docs, probes.doc_ids, relevant)
    groups, labels = {}, np.array([probes.groups[i] for i in idx_all])
    for group in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == group)
        m = evaluate(queries[idx], docs, probes.doc_ids, [relevant[i] for i in idx])
        groups[group] = {**m, "queries": int(idx.size)}
    return {"metrics": {**overall, "queries": int(idx_all.size), "documents": len(probes.doc_ids)},
            "groups": groups}


def read_sts(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """STS-B style jsonl: ``sentence1``, ``sentence2``, ``score``."""
    first, second, scores = [], [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                record = json.loads(line)
                first.append(record["sentence1"])
                second.append(record["sentence2"])
                scores.append(float(record["score"]))
    return first, second, np.array(scores)


def sts_spearman(encoder: OnnxEncoder, path: Path) -> float:
    from scipy.stats import spearmanr

    first, second, scores = read_sts(path)
    a, b = encoder.encode(first), encoder.encode(second)
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(spearmanr(cosine, scores).statistic)
