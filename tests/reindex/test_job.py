"""Reindexing into a real Qdrant (embedded, local mode) with the tiny model's two versions: the swap
happens once every document is in, the old collection stays, and a run killed with SIGKILL resumes
to exactly one point per document."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embedloop.core.models.versions import load_encoder
from embedloop.reindex.job import Reindex, ReindexError
from embedloop.reindex.store import VectorStore, open_client
from tests.conftest import REPO, make_state


def write_corpus(state, path: Path) -> int:
    ids, texts = state.corpus.all()
    path.write_text("".join(json.dumps({"id": d, "text": t}) + "\n" for d, t in zip(ids, texts)))
    return len(ids)


def test_a_channel_is_built_then_reindexed_from_its_own_payloads_and_the_old_index_stays(review_home, tmp_path):
    with make_state(review_home) as state:
        documents = write_corpus(state, tmp_path / "corpus.jsonl")
        state.channels.create("index-main")
        store = VectorStore(open_client(state.settings))
        try:
            job = Reindex(state, store)
            first = job.run("index-main", "v1", tmp_path / "corpus.jsonl", chunk=100)
            assert (first.collection, first.documents, first.embedded) == ("index-main__v1", documents, documents)
            assert store.aliased("index-main") == "index-main__v1" and store.count("index-main__v1") == documents

            doc_id, text = next(iter(store.documents("index-main__v1")))
            v1 = load_encoder(state.settings, state.registry.get("v1"))
            assert store.search("index-main", v1.encode([text])[0])[0] == doc_id  # a document finds itself

            plan = job.plan("index-main", "v2")
            assert (plan.documents, plan.written, plan.collection) == (documents, 0, "index-main__v2")
            second = job.run("index-main", "v2", chunk=100)  # the texts come from the current index
            assert second.embedded == documents and store.count("index-main__v2") == documents
            assert store.aliased("index-main") == "index-main__v2"
            assert store.count("index-main__v1") == documents  # untouched
            channel = state.channels.get("index-main")
            assert (channel.serves, channel.built_with) == ("v2", "v2")
            assert state.registry.history(1)[0].action == "channel_reindexed"
            with pytest.raises(ReindexError, match="already built with v2"):
                job.run("index-main", "v2")
        finally:
            store.close()


def test_bad_sources_and_unknown_channels_change_nothing(review_home, tmp_path):
    with make_state(review_home) as state:
        state.channels.create("index-main")
        store = VectorStore(open_client(state.settings))
        try:
            job = Reindex(state, store)
            with pytest.raises(ReindexError, match="no index yet"):
                job.run("index-main", "v2")
            (tmp_path / "bad.jsonl").write_text('{"id": "a", "text": "fine"}\nnot json\n')
            with pytest.raises(ReindexError, match="line 2"):
                job.run("index-main", "v2", tmp_path / "bad.jsonl")
            with pytest.raises(Exception, match="no channel"):
                job.run("index-other", "v2", tmp_path / "bad.jsonl")
            assert store.aliased("index-main") is None and not store.client.collection_exists("index-main__v2")
        finally:
            store.close()


@pytest.mark.integration
def test_a_reindex_killed_halfway_leaves_the_old_index_serving_and_resumes_to_exactly_one_point_each(
        review_home, tmp_path):
    with make_state(review_home) as state:
        documents = write_corpus(state, tmp_path / "corpus.jsonl")
        state.channels.create("index-main")
        store = VectorStore(open_client(state.settings))
        Reindex(state, store).run("index-main", "v1", tmp_path / "corpus.jsonl")
        store.close()
    cli = [str(Path(sys.executable).parent / "embedloop"), "reindex", "index-main", "--to", "v2",
           "--home", str(review_home)]
    env = {**os.environ, "EMBEDLOOP_VECTORS__CHUNK": "2", "COLUMNS": "200"}  # many small steps to stop between
    storage = review_home / "vectors" / "collection" / "index-main__v2" / "storage.sqlite"
    process = subprocess.Popen(cli, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (storage.is_file() and storage.stat().st_size > 64 * 1024):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()

    with make_state(review_home) as state:
        store = VectorStore(open_client(state.settings))
        try:
            partial = store.count("index-main__v2")
            assert 0 < partial < documents, partial  # killed halfway …
            assert store.aliased("index-main") == "index-main__v1"  # … so searches still see the whole old index
            assert store.count("index-main__v1") == documents
            assert state.channels.get("index-main").serves == "v1"
        finally:
            store.close()

    resumed = subprocess.run(cli, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{documents - partial} embedded by this run" in resumed.stdout
    with make_state(review_home) as state:
        store = VectorStore(open_client(state.settings))
        try:
            assert store.count("index-main__v2") == documents
            ids = [d for d, _ in store.documents("index-main__v2")]
            assert len(ids) == len(set(ids)) == documents and set(ids) == set(state.corpus.all()[0])
            assert store.aliased("index-main") == "index-main__v2"
            assert state.channels.get("index-main").serves == "v2"
        finally:
            store.close()
