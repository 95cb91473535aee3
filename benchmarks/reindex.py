"""Reindexing MedQuAD's 15,736 answers into Qdrant (embedded): its rate against the in-process int8
rate of the same graph, and a run killed with SIGKILL halfway then resumed.

    .venv/bin/python benchmarks/reindex.py [--repeats 3] [--work DIR]

One state folder with the base model as v1 and a channel ``index-main``. Per repeat, in one run:
the in-process rate (the int8 graph embedding every answer in chunks of ``vectors.chunk``, nothing
written), then ``embedloop reindex index-main --to v1 --from corpus.jsonl`` into a fresh vector
folder, timed by the command's own texts/s. Then once: the same command killed with SIGKILL once
about half the answers are in, and run again. Targets: reindex ≥ 0.9 × the in-process rate (medians
of the repeats); after the kill and the resume, exactly 15,736 points, one per answer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

from common import DATASETS, REPO, base_home, save

from embedloop.core.labels.files import read_corpus
from embedloop.core.models.registry import PRODUCTION
from embedloop.core.models.versions import load_encoder
from embedloop.core.settings import load_settings
from embedloop.core.state import State

CLI = str(REPO / ".venv" / "bin" / "embedloop")
CORPUS = DATASETS / "medquad" / "corpus.jsonl"


def reindex(home: Path, vectors: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "EMBEDLOOP_VECTORS__PATH": str(vectors), "COLUMNS": "200"}
    return subprocess.run([CLI, "reindex", "index-main", "--to", "v1", "--from", str(CORPUS), "--home", str(home)],
                          cwd=REPO, env=env, capture_output=True, text=True, check=check)


def rate_of(output: str) -> tuple[int, float]:
    """(texts embedded by the run, its texts/s) from the command's last line."""
    found = re.search(r"\((\d+) embedded by this run, (\d+) texts/s\)", output)
    return int(found.group(1)), float(found.group(2))


def in_process_rate(state: State, texts: list[str], chunk: int) -> float:
    encoder = load_encoder(state.settings, state.registry.get(state.registry.alias(PRODUCTION)))
    started = time.perf_counter()
    for start in range(0, len(texts), chunk):
        encoder.encode(texts[start : start + chunk])
    return len(texts) / (time.perf_counter() - started)


def killed_and_resumed(home: Path, vectors: Path, documents: int) -> dict:
    shutil.rmtree(vectors, ignore_errors=True)
    env = {**os.environ, "EMBEDLOOP_VECTORS__PATH": str(vectors), "COLUMNS": "200"}
    process = subprocess.Popen([CLI, "reindex", "index-main", "--to", "v1", "--from", str(CORPUS),
                                "--home", str(home)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    storage = vectors / "collection" / "index-main__v1" / "storage.sqlite"
    # about half: the points table grows by roughly the same bytes per answer
    full_size = json.loads((vectors.parent / "full-size.json").read_text())["bytes"]
    while process.poll() is None and not (storage.is_file() and storage.stat().st_size > full_size / 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = reindex(home, vectors)
    embedded, _ = rate_of(resumed.stdout)
    from embedloop.reindex.store import VectorStore, open_client

    state = State(load_settings(home, vectors={"path": vectors}))
    store = VectorStore(open_client(state.settings))
    try:
        points, alias = store.count("index-main__v1"), store.aliased("index-main")
        ids = {d for d, _ in store.documents("index-main__v1")}
    finally:
        store.close()
        state.close()
    return {"written_before_the_kill": documents - embedded, "embedded_by_the_resume": embedded,
            "points": points, "distinct_documents": len(ids), "alias": alias,
            "exactly_once": points == len(ids) == documents}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/embedloop-bench-reindex"))
    args = parser.parse_args()
    home, vectors = args.work / "home", args.work / "vectors"
    shutil.rmtree(args.work, ignore_errors=True)
    home.mkdir(parents=True)
    base_home(home)
    state = State(load_settings(home))
    state.channels.create("index-main", reason="benchmark")
    texts = [t for _, t in read_corpus(CORPUS).records]
    chunk = state.settings.vectors.chunk
    rounds = []
    for repeat in range(args.repeats):
        inproc = in_process_rate(state, texts, chunk)
        shutil.rmtree(vectors, ignore_errors=True)
        embedded, rate = rate_of(reindex(home, vectors).stdout)
        assert embedded == len(texts)
        rounds.append({"in_process_texts_per_s": round(inproc, 1), "reindex_texts_per_s": rate,
                       "ratio": round(rate / inproc, 3)})
        print(f"repeat {repeat + 1}: in-process {inproc:.0f} texts/s, reindex {rate:.0f} texts/s, "
              f"ratio {rate / inproc:.3f}", flush=True)
    state.close()
    size = (vectors / "collection" / "index-main__v1" / "storage.sqlite").stat().st_size
    (args.work / "full-size.json").write_text(json.dumps({"bytes": size}))
    kill = killed_and_resumed(home, vectors, len(texts))
    print(f"kill -9 halfway: {kill}")
    ratio = statistics.median(r["ratio"] for r in rounds)
    save("reindex", {
        "documents": len(texts), "chunk": chunk, "rounds": rounds,
        "median_in_process_texts_per_s": statistics.median(r["in_process_texts_per_s"] for r in rounds),
        "median_reindex_texts_per_s": statistics.median(r["reindex_texts_per_s"] for r in rounds),
        "median_ratio": ratio, "kill_and_resume": kill,
        "targets": {"ratio_at_least_0.9": ratio >= 0.9, "exactly_once_after_kill": kill["exactly_once"]},
    })


if __name__ == "__main__":
    main()
