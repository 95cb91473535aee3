"""Corpus embeddings of a version, computed once: cached per (graph checksum, corpus fingerprint).

Mining, the gates and the probe check all rank against the same corpus with the same versions, so
a version's corpus is embedded once however many of them ask.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.progress import Progress, no_progress

STEP = "embedding corpus"


def encode_in_chunks(encoder: OnnxEncoder, texts: list[str], progress: Progress = no_progress,
                     chunk: int = 512) -> np.ndarray:
    parts = []
    for start in range(0, len(texts), chunk):
        parts.append(encoder.encode(texts[start : start + chunk]))
        progress(STEP, min(start + chunk, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.empty((0, encoder.dimensions), dtype=np.float32)


def corpus_fingerprint(doc_ids: list[str], doc_texts: list[str]) -> str:
    digest = hashlib.sha256()
    for doc_id, text in zip(doc_ids, doc_texts):
        digest.update(doc_id.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()[:16]


def cached_corpus_embeddings(encoder: OnnxEncoder, model_key: str, doc_ids: list[str], doc_texts: list[str],
                             cache_dir: Path, progress: Progress = no_progress) -> np.ndarray:
    path = Path(cache_dir) / f"{model_key}-{corpus_fingerprint(doc_ids, doc_texts)}.npy"
    if path.is_file():
        return np.load(path)
    vectors = encode_in_chunks(encoder, doc_texts, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors
