"""Datasets in the BEIR layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/{split}.tsv``."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass
class BeirDataset:
    corpus: dict[str, dict]   # doc id -> record (title, text, …)
    queries: dict[str, dict]  # query id -> record (text, …)
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}

    def doc_text(self, doc_id: str, with_title: bool = True) -> str:
        doc = self.corpus[doc_id]
        title = doc.get("title") or ""
        return f"{title}. {doc['text']}" if with_title and title else doc["text"]


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with open(path) as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header and header[0] != "query-id":  # files without a header row
            qrels[header[0]][header[1]] = int(header[2])
        for row in reader:
            if len(row) >= 3 and int(row[2]) > 0:
                qrels[row[0]][row[1]] = int(row[2])
    return dict(qrels)


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    folder = Path(folder)
    corpus = {r["id"]: r for r in read_jsonl(folder / "corpus.jsonl")}
    queries = {r["id"]: r for r in read_jsonl(folder / "queries.jsonl")}
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    return BeirDataset(corpus, {q: queries[q] for q in qrels if q in queries}, qrels)
