"""Datasets in the BEIR layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/{split}.tsv``, read
whole (for the probe import, the benchmarks and the demo) with the same readers as the imports."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from embedloop.core.labels.files import ReadResult, json_lines, read_corpus, read_qrels, read_queries


class DatasetError(ValueError):
    """A dataset file with bad records."""


@dataclass
class BeirDataset:
    corpus: dict[str, str]  # doc id -> text (title first)
    queries: dict[str, dict]  # query id -> record (text, and fields such as the group) of the split's queries
    qrels: dict[str, dict[str, int]]  # query id -> {relevant doc id: score}


def _checked(read: ReadResult, path: Path) -> list:
    if read.problems:
        number, problem = read.problems[0]
        raise DatasetError(f"{path}:{number}: {problem}" + (f" (and {len(read.problems) - 1} more problems)"
                                                             if len(read.problems) > 1 else ""))
    return read.records


def read_jsonl(path: Path) -> list:
    """Every record of a JSON-lines file; :class:`DatasetError` on a line that is not JSON."""
    records = []
    for number, record, problem in json_lines(Path(path)):
        if problem:
            raise DatasetError(f"{path}:{number}: {problem}")
        records.append(record)
    return records


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    folder = Path(folder)
    corpus = dict(_checked(read_corpus(folder / "corpus.jsonl"), folder / "corpus.jsonl"))
    queries = dict(_checked(read_queries(folder / "queries.jsonl"), folder / "queries.jsonl"))
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for judgement in _checked(read_qrels(qrels_path), qrels_path):
        qrels[judgement.query_id][judgement.doc_id] = judgement.score
    return BeirDataset(corpus, {q: queries[q] for q in qrels if q in queries}, dict(qrels))
