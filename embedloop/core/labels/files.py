"""Reading label files — corpus, queries and qrels in the BEIR layout, feedback pairs — reporting
every bad record with its line number.

Readers never write: they return the good records and the problems, and the caller decides (the
command line writes nothing while any record is bad, unless told to skip them;
:func:`embedloop.core.labels.beir.load_beir` refuses a dataset with problems).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from embedloop.core.labels.feedback import FeedbackItem
from embedloop.core.validation import first_problem


@dataclass
class ReadResult:
    records: list = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, what is wrong)


def json_lines(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, decoded record or None, problem or None) for every non-blank line."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield number, None, f"not JSON: {exc.msg}"


def document_text(record: dict) -> str:
    """A corpus record's text, its title (if any) put before it."""
    title = record.get("title") or ""
    return f"{title}. {record['text']}" if isinstance(title, str) and title else record["text"]


def _records_with_ids(path: Path, kind: str) -> ReadResult:
    """JSON objects with a unique ``id`` and a non-empty ``text``, as (id, record)."""
    result, seen = ReadResult(), set()
    for number, record, problem in json_lines(path):
        if problem is None:
            if not isinstance(record, dict):
                problem = "not a JSON object"
            elif not isinstance(record.get("id"), (str, int)) or str(record.get("id")).strip() == "":
                problem = "needs an \"id\" (string)"
            elif not isinstance(record.get("text"), str) or not record["text"].strip():
                problem = "needs a non-empty \"text\""
            elif str(record["id"]) in seen:
                problem = f"duplicate {kind} id {record['id']!r}"
        if problem:
            result.problems.append((number, problem))
            continue
        seen.add(str(record["id"]))
        result.records.append((str(record["id"]), record))
    return result


def read_corpus(path: Path) -> ReadResult:
    """``corpus.jsonl`` (or a BEIR folder holding it), ``{"id", "text", "title"?}`` per line, as
    (doc id, text with its title)."""
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    read = _records_with_ids(path, "document")
    read.records = [(doc_id, document_text(record)) for doc_id, record in read.records]
    return read


def read_queries(path: Path) -> ReadResult:
    """``queries.jsonl``: ``{"id", "text", …}`` per line, as (query id, record with every field)."""
    return _records_with_ids(Path(path), "query")


class Judgement(NamedTuple):
    line: int
    query_id: str
    doc_id: str
    score: int


def read_qrels(path: Path) -> ReadResult:
    """``qrels/<split>.tsv`` (``query-id, corpus-id, score``, header optional) as
    :class:`Judgement` records of the relevant pairs (score > 0)."""
    result = ReadResult()
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if number == 1 and parts[0] == "query-id" or not line.strip():
                continue
            if len(parts) < 3 or not parts[2].strip().lstrip("-").isdigit():
                result.problems.append((number, "needs query-id<TAB>corpus-id<TAB>score"))
            elif int(parts[2]) > 0:  # judged not relevant: nothing to learn from as a positive
                result.records.append(Judgement(number, parts[0], parts[1], int(parts[2])))
    return result


def read_feedback_jsonl(path: Path) -> ReadResult:
    """One :class:`FeedbackItem` per line; ``{"query", "positive_id" | "positive_text", …}``."""
    result = ReadResult()
    for number, record, problem in json_lines(Path(path)):
        if problem is None:
            try:
                result.records.append(FeedbackItem.model_validate(record))
                continue
            except ValidationError as exc:
                problem = str(first_problem(exc))
        result.problems.append((number, problem))
    return result


def read_feedback_qrels(qrels: Path, queries: Path, group_field: str = "source") -> ReadResult:
    """BEIR qrels with the query texts from ``queries.jsonl``, as feedback items."""
    texts = dict(read_queries(queries).records)
    read = read_qrels(qrels)
    result = ReadResult(problems=list(read.problems))
    for judgement in read.records:
        record = texts.get(judgement.query_id)
        if record is None:
            result.problems.append((judgement.line, f"query {judgement.query_id!r} is not in {Path(queries).name}"))
            continue
        group = record.get(group_field)
        result.records.append(FeedbackItem(query=record["text"], positive_id=judgement.doc_id,
                                           group=str(group) if group is not None else None))
    result.problems.sort()
    return result
