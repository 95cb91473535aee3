import json

import pytest

from embedloop.core.labels.beir import DatasetError, load_beir
from embedloop.core.labels.files import read_corpus, read_feedback_jsonl, read_feedback_qrels
from tests.conftest import DATASETS


def test_file_readers_report_bad_lines_by_number(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "title": "Gout", "text": "A kind of arthritis."}\nnot json\n'
                      '{"id": "b"}\n{"id": "a", "text": "again"}\n\n{"id": "c", "text": "fine"}\n')
    read = read_corpus(corpus)
    assert read.records == [("a", "Gout. A kind of arthritis."), ("c", "fine")]
    assert [n for n, _ in read.problems] == [2, 3, 4] and "duplicate" in read.problems[2][1]

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(r) for r in [
        {"query": "What is gout?", "positive_id": "a"}, {"query": "x"}, [1, 2]]) + "\n")
    read = read_feedback_jsonl(pairs)
    assert len(read.records) == 1 and [n for n, _ in read.problems] == [2, 3]

    (tmp_path / "queries.jsonl").write_text('{"id": "q1", "text": "What is gout?", "source": "GARD"}\n')
    qrels = tmp_path / "train.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\ta\t1\nq2\ta\t1\nq1\tb\t0\nbroken line\n")
    read = read_feedback_qrels(qrels, tmp_path / "queries.jsonl")
    assert [(r.query, r.positive_id, r.group) for r in read.records] == [("What is gout?", "a", "GARD")]
    assert [n for n, _ in read.problems] == [3, 5]


def test_medquad_loads_in_beir_layout():
    folder = DATASETS / "medquad"
    if not folder.is_dir():
        pytest.skip("shared datasets not present")
    data = load_beir(folder, "test")
    assert len(data.queries) == 2777 and len(data.corpus) == 15736
    assert all(doc in data.corpus for rel in data.qrels.values() for doc in rel)


def test_a_dataset_with_a_bad_line_is_refused_with_its_place(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"id": "d1", "text": "ok"}\n{"id": "d1", "text": "twice"}\n')
    (tmp_path / "queries.jsonl").write_text('{"id": "q1", "text": "q"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    with pytest.raises(DatasetError, match=r"corpus.jsonl:2: duplicate document id"):
        load_beir(tmp_path, "test")
