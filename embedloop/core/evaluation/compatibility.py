"""Compatibility of two versions: how well one version's query vectors retrieve from an index built
by another — the document vectors a client stored before an update. Measured on the probe set with
the int8 graphs as served, beside each version's own figures; shared by the gates, benchmarks and
the review page.

A version is *compatible* with an older one when its cross figure (its queries against the older
version's documents) is at least the older version's own figure minus a tolerance: a client that
keeps its index loses nothing by taking the update.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedloop.core.evaluation.corpus_cache import cached_corpus_embeddings
from embedloop.core.evaluation.probes import EmptyProbeSet, ProbeScores, rank_probes
from embedloop.core.models.adapters import MIN_DOCUMENTS_PER_DIMENSION, fit_rotation, rotate
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.progress import Progress, no_progress


def cross_scores(own: ProbeScores, documents: OnnxEncoder, documents_key: str, cache_dir: Path,
                 progress: Progress = no_progress) -> ProbeScores:
    """The probe queries as ``own`` embedded them, ranked against the corpus embedded by
    ``documents`` (cached under ``documents_key``, like every version's corpus)."""
    probes = own.probes
    if not probes.query_ids:
        raise EmptyProbeSet()
    docs = cached_corpus_embeddings(documents, documents_key, probes.doc_ids, probes.doc_texts, cache_dir, progress)
    return rank_probes(own.query_vectors, docs, probes)


def compatibility(cross: ProbeScores, own: ProbeScores, older: ProbeScores, metric: str, tolerance: float) -> dict:
    """The figures of one version against an ``older`` one: ``cross`` (new queries × older
    documents), ``own`` (the new version alone), ``older`` (the older version alone), and whether
    the new version is compatible (``cross[metric] ≥ older[metric] − tolerance``)."""
    figures = {side: scores.summary()["metrics"] for side, scores in
               (("cross", cross), ("own", own), ("older", older))}
    needed = figures["older"][metric] - tolerance
    return {"metric": metric, "tolerance": tolerance, **figures,
            "compatible": figures["cross"][metric] >= needed,
            # the share of the update's own gain a client keeps without reindexing
            "kept_gain": share_of_gain(figures, metric)}


def share_of_gain(figures: dict, metric: str) -> float | None:
    gain = figures["own"][metric] - figures["older"][metric]
    return (figures["cross"][metric] - figures["older"][metric]) / gain if gain > 1e-9 else None


@dataclass
class FittedAdapter:
    """A query adapter fitted at the gates: its rotation, its cross scores, and how it was fitted."""

    rotation: np.ndarray
    cross: ProbeScores
    documents: int  # corpus documents it was fitted on (none of them relevant to a probe query)


def fit_query_adapter(own: ProbeScores, new_docs: np.ndarray, old_docs: np.ndarray) -> FittedAdapter | str:
    """Fit a rotation of the new version's space into the older one's on the corpus documents no probe
    query points to (so the probe figures measure it on documents it was not fitted to), and rank the
    rotated probe queries against the older version's vectors. A reason instead when it cannot be fitted."""
    probes = own.probes
    if new_docs.shape[1] != old_docs.shape[1]:
        return f"the versions' dimensions differ ({new_docs.shape[1]} vs {old_docs.shape[1]})"
    relevant = set().union(*probes.relevant)
    fit_on = np.array([i for i, doc in enumerate(probes.doc_ids) if doc not in relevant], dtype=np.int64)
    needed = MIN_DOCUMENTS_PER_DIMENSION * new_docs.shape[1]
    if fit_on.size < needed:
        return f"{fit_on.size} corpus documents outside the probe answers; a rotation needs {needed}"
    rotation = fit_rotation(new_docs[fit_on], old_docs[fit_on])
    adapted = rotate(own.query_vectors, rotation)
    return FittedAdapter(rotation, rank_probes(adapted, old_docs, probes), int(fit_on.size))
