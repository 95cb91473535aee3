"""Probe check: embed the probe queries with a version exactly as served (int8) and rank the
probe corpus. Corpus embeddings are cached per (version, corpus fingerprint)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedloop.core.encoder import OnnxEncoder
from embedloop.core.probes import ProbeSet
from embedloop.core.retrieval import evaluate


class ProbeCheck:
    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = Path(cache_dir)

    def corpus_embeddings(self, encoder: OnnxEncoder, version: str, probes: ProbeSet,
                          progress=None) -> np.ndarray:
        path = self.cache_dir / f"{version}-{probes.corpus_fingerprint()}.npy"
        if path.is_file():
            return np.load(path)
        vectors = encode_in_chunks(encoder, probes.doc_texts, progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)
        return vectors

    def __call__(self, encoder: OnnxEncoder, version: str, probes: ProbeSet, progress=None) -> dict:
        if not probes.query_ids:
            raise ValueError("the probe set is empty: import one with `embedloop probe import`")
        docs = self.corpus_embeddings(encoder, version, probes, progress)
        queries = encoder.encode(probes.query_texts)
        overall = evaluate(queries, docs, probes.doc_ids, probes.relevant)
        groups = {}
        labels = np.array(probes.groups)
        for group in sorted(set(probes.groups)):
            idx = np.flatnonzero(labels == group)
            m = evaluate(queries[idx], docs, probes.doc_ids, [probes.relevant[i] for i in idx])
            groups[group] = {**m, "queries": int(idx.size)}
        return {"metrics": {**overall, "queries": len(probes.query_ids), "documents": len(probes.doc_ids)},
                "groups": groups}


def encode_in_chunks(encoder: OnnxEncoder, texts: list[str], progress=None, chunk: int = 512) -> np.ndarray:
    parts = []
    for start in range(0, len(texts), chunk):
        parts.append(encoder.encode(texts[start : start + chunk]))
        if progress is not None:
            progress(min(start + chunk, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.empty((0, encoder.dimensions), dtype=np.float32)


def probe_alarm(recall10: float, baseline: float | None, floor: float, max_drop: float) -> str | None:
    """Why recall@10 is alarming, or None."""
    if recall10 < floor:
        return f"recall@10 {recall10:.4f} is below the floor {floor:.4f}"
    if baseline is not None and recall10 < baseline - max_drop:
        return f"recall@10 {recall10:.4f} dropped more than {max_drop:.4f} below {baseline:.4f} at promotion"
    return None
