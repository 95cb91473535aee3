"""The validation split a run chooses on: how long to train, how much of the fine-tuned weights to
keep, and which weight of the backward-compatible objective.

The corpus it ranks against is small enough to re-embed at every check and hard enough to tell
candidates apart: the validation positives, each validation query's nearest documents under the
parent (as served), and a random sample of the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedloop.core.evaluation.retrieval import evaluate, top_k
from embedloop.core.labels.feedback import TrainingPair
from embedloop.core.progress import Progress, no_progress
from embedloop.core.settings import TrainingSettings
from embedloop.retrain.mining import ServedEmbeddings

NAME = "validation"


@dataclass
class ValidationSet:
    queries: list[str]
    corpus: list[str]
    relevant: list[set[str]]  # documents are named by their text
    stored: np.ndarray | None = None  # the parent's served vectors of ``corpus``: what clients stored

    @classmethod
    def build(cls, embeddings: ServedEmbeddings, pairs: list[TrainingPair], seed: int, max_queries: int = 256,
              neighbours: int = 5, random_docs: int = 300) -> "ValidationSet | None":
        if not pairs:
            return None
        rng = np.random.default_rng(seed)
        if len(pairs) > max_queries:
            pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), size=max_queries, replace=False))]
        near = top_k(embeddings.queries([p.query for p in pairs]), embeddings.corpus_vectors, neighbours)
        pool = rng.choice(len(embeddings.corpus), size=min(random_docs, len(embeddings.corpus)), replace=False)
        texts = [p.positive for p in pairs] + [embeddings.corpus[i] for i in np.concatenate([near.ravel(), pool])]
        corpus = list(dict.fromkeys(texts))
        return cls([p.query for p in pairs], corpus, [{p.positive} for p in pairs], embeddings.documents(corpus))

    def score(self, model) -> dict[str, float]:  # noqa: ANN001 - SentenceTransformer
        """Retrieval metrics of ``model`` (torch, as it trains) on the split."""
        return self.figures(model)["own"]

    def figures(self, model) -> dict[str, dict[str, float]]:  # noqa: ANN001 - SentenceTransformer
        """``own``: the model's queries against its own document vectors; ``cross``: against the
        parent's stored vectors (what a client that did not reindex searches)."""
        queries = model.encode(self.queries, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        docs = model.encode(self.corpus, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        own = evaluate(queries, docs, self.corpus, self.relevant)
        return {"own": own} if self.stored is None else {
            "own": own, "cross": evaluate(queries, self.stored, self.corpus, self.relevant)}

    def evaluator(self):  # noqa: ANN201 - a sentence-transformers InformationRetrievalEvaluator
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

        return InformationRetrievalEvaluator(
            queries={str(i): q for i, q in enumerate(self.queries)},
            corpus={str(i): d for i, d in enumerate(self.corpus)},
            relevant_docs={str(i): {str(self.corpus.index(next(iter(r))))} for i, r in enumerate(self.relevant)},
            mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1], precision_recall_at_k=[10], map_at_k=[10],
            batch_size=64, name=NAME, write_csv=False)


def mix(parent: dict, tuned: dict, alpha: float) -> dict:
    return {k: (parent[k] + alpha * (tuned[k] - parent[k])) if tuned[k].is_floating_point() else tuned[k]
            for k in tuned}


def choose_interpolation(parent_state: dict, tuned, validation: ValidationSet | None,  # noqa: ANN001
                         settings: TrainingSettings, metric: str,
                         progress: Progress = no_progress) -> tuple[float, dict[str, dict[str, dict[str, float]]]]:
    """Load ``parent + a (tuned − parent)`` into ``tuned`` for the smallest ``a`` whose validation
    score is within ``interpolation_tolerance`` of the best: the least change that keeps the gain.
    Returns ``a`` and every coefficient's own and cross figures (``0`` is the parent)."""
    if validation is None:  # nothing to choose on: keep the fine-tuned weights
        return 1.0, {}
    tuned_state = {k: v.detach().clone() for k, v in tuned.state_dict().items()}
    alphas = sorted({0.0, *settings.interpolation})
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for step, alpha in enumerate(alphas):
        tuned.load_state_dict(mix(parent_state, tuned_state, alpha))
        figures[str(alpha)] = validation.figures(tuned)
        progress("choosing interpolation", step + 1, len(alphas))
    tried = [a for a in alphas if a > 0]
    best = max(figures[str(a)]["own"][metric] for a in tried)
    chosen = min(a for a in tried if figures[str(a)]["own"][metric] >= best - settings.interpolation_tolerance)
    tuned.load_state_dict(mix(parent_state, tuned_state, chosen))
    return chosen, figures


def choose_weight(outcomes: dict[float, dict[str, dict[str, float]]], keep: float, metric: str) -> float:
    """Among the compatibility weights whose own validation score is at least ``keep`` x the best
    one's, the one whose queries rank best against the parent's stored vectors (the smallest weight
    on a tie). ``outcomes`` maps a weight to its validation figures at the interpolation it chose."""
    best_own = max(figures["own"][metric] for figures in outcomes.values())
    kept = [w for w, figures in outcomes.items() if figures["own"][metric] >= keep * best_own]
    if any("cross" not in outcomes[w] for w in kept):  # nothing to compare against: the plainest
        return min(kept)
    return max(sorted(kept), key=lambda w: outcomes[w]["cross"][metric])
