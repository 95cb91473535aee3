"""Retrieval quality of the int8 graph vs the fp32 model on MedQuAD (test queries, full corpus).

    .venv/bin/python benchmarks/quality.py [--max-seq-length 256]

Documents are embedded as "title. text". Reports recall@1/5/10, MRR@10, nDCG@10 for torch fp32
and the served int8 graph, and the int8/fp32 recall@10 ratio (target >= 0.99).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import DATASETS, base_home, save

from embedloop.core.evaluation.retrieval import evaluate
from embedloop.core.labels.beir import load_beir
from embedloop.core.models.versions import load_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DATASETS / "medquad")
    parser.add_argument("--home", type=Path, default=None, help="state folder (default: a temporary one)")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    home = args.home or Path(tempfile.mkdtemp(prefix="embedloop-quality-"))
    settings, registry = base_home(home)
    version = registry.get(registry.alias("production"))
    data = load_beir(args.dataset, "test")
    doc_ids = list(data.corpus)
    doc_texts = [data.corpus[d] for d in doc_ids]
    query_ids = list(data.qrels)
    query_texts = [data.queries[q]["text"] for q in query_ids]
    relevant = [set(data.qrels[q]) for q in query_ids]
    print(f"{len(query_ids)} queries, {len(doc_ids)} documents")

    results = {}
    torch_model = SentenceTransformer(str(settings.models_dir / version.artifact_dir / "checkpoint"), device="cpu")
    int8 = load_encoder(settings, version)
    for name, encode in (
        ("fp32_torch", lambda texts: torch_model.encode(texts, batch_size=64, normalize_embeddings=True)),
        ("int8_onnx", lambda texts: int8.encode(texts, batch_size=64)),
    ):
        started = time.perf_counter()
        docs = encode(doc_texts)
        queries = encode(query_texts)
        metrics = evaluate(queries, docs, doc_ids, relevant)
        metrics["embed_seconds"] = round(time.perf_counter() - started, 1)
        results[name] = metrics
        print(name, {k: round(v, 4) for k, v in metrics.items()})
    ratio = results["int8_onnx"]["recall@10"] / results["fp32_torch"]["recall@10"]
    print(f"int8/fp32 recall@10 = {ratio:.4f} (target >= 0.99)")
    save("quality", {"dataset": str(args.dataset.name), "queries": len(query_ids), "documents": len(doc_ids),
                     "max_seq_length": int8.max_seq_length, "results": results,
                     "int8_over_fp32_recall@10": ratio, "target_met": ratio >= 0.99})


if __name__ == "__main__":
    main()
