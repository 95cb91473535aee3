"""Reading corpus and feedback files, reporting every bad record with its line number.

Readers never write: they return the good records and the problems, and the caller decides
(the CLI writes nothing while any record is bad, unless told to skip them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from embedloop.core.feedback import FeedbackItem


@dataclass
class ReadResult:
    records: list = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, what is wrong)


def _json_lines(path: Path):
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield number, None, f"not JSON: {exc.msg}"


def read_corpus(path: Path) -> ReadResult:
    """``corpus.jsonl`` (or a BEIR folder holding it): ``{"id", "text", "title"?}`` per line.

    A title is put before the text, as the probe set and the benchmarks do."""
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    result, seen = ReadResult(), set()
    for number, record, problem in _json_lines(path):
        if problem is None:
            if not isinstance(record, dict):
                problem = "not a JSON object"
            elif not isinstance(record.get("id"), (str, int)) or str(record.get("id")).strip() == "":
                problem = "needs an \"id\" (string)"
            elif not isinstance(record.get("text"), str) or not record["text"].strip():
                problem = "needs a non-empty \"text\""
            elif str(record["id"]) in seen:
                problem = f"duplicate id {record['id']!r}"
        if problem:
            result.problems.append((number, problem))
            continue
        doc_id, title = str(record["id"]), record.get("title") or ""
        seen.add(doc_id)
        text = f"{title}. {record['text']}" if isinstance(title, str) and title else record["text"]
        result.records.append((doc_id, text))
    return result


def read_feedback_jsonl(path: Path) -> ReadResult:
    """One :class:`FeedbackItem` per line; ``{"query", "positive_id" | "positive_text", …}``."""
    result = ReadResult()
    for number, record, problem in _json_lines(Path(path)):
        if problem is None:
            try:
                result.records.append(FeedbackItem.model_validate(record))
                continue
            except ValidationError as exc:
                first = exc.errors(include_url=False, include_input=False)[0]
                where = ".".join(str(p) for p in first["loc"])
                problem = f"{where + ': ' if where else ''}{first['msg']}"
        result.problems.append((number, problem))
    return result


def read_feedback_qrels(qrels: Path, queries: Path, group_field: str = "source") -> ReadResult:
    """BEIR qrels (``query-id, corpus-id, score``) with the query texts from ``queries.jsonl``."""
    texts: dict[str, tuple[str, str | None]] = {}
    for _, record, problem in _json_lines(Path(queries)):
        if problem is None and isinstance(record, dict) and isinstance(record.get("text"), str):
            group = record.get(group_field)
            texts[str(record.get("id"))] = (record["text"], str(group) if group is not None else None)
    result = ReadResult()
    with open(qrels, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if number == 1 and parts[0] == "query-id" or not line.strip():
                continue
            if len(parts) < 3 or not parts[2].strip().lstrip("-").isdigit():
                result.problems.append((number, "needs query-id<TAB>corpus-id<TAB>score"))
            elif int(parts[2]) <= 0:
                continue  # judged not relevant: nothing to learn from as a positive
            elif parts[0] not in texts:
                result.problems.append((number, f"query {parts[0]!r} is not in {Path(queries).name}"))
            else:
                text, group = texts[parts[0]]
                result.records.append(FeedbackItem(query=text, positive_id=parts[1], group=group))
    return result
