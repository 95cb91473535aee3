import threading
import time

import numpy as np
import pytest

from embedloop.core.history.querylog import QueryLogStore, QueryLogWriter, RequestRecord, SampledText, samples_table
from embedloop.core.settings import Privacy, QueryLogSettings


def record(version="v1", ts=None, samples=()):
    r = RequestRecord(version, 200, len(samples) or 1, 5, 1.5, samples=list(samples))
    if ts is not None:
        r.ts = ts
    return r


@pytest.fixture
def store(engine):
    return QueryLogStore(engine)


@pytest.mark.parametrize("privacy", list(Privacy))
def test_privacy_setting_decides_what_is_kept_of_a_text(store, privacy):
    vec = np.linspace(-1, 1, 8).astype(np.float32)
    store.write([record(samples=[SampledText("chest pain", 4, vec)])], privacy)
    with store.engine.connect() as conn:
        row = conn.execute(samples_table.select()).one()
    assert row.text == ("chest pain" if privacy is Privacy.TEXT else None)
    assert (row.text_sha256 is not None) == (privacy is Privacy.HASH)
    (row,) = store.sample_rows(version="v1", ids=store.sample_ids("v1"))
    assert np.allclose(row.embedding, vec, atol=1e-3)  # float16 on disk


def test_writer_batches_and_flushes_on_close(store):
    written = []
    writer = QueryLogWriter(store, QueryLogSettings(batch_size=50, flush_interval_s=0.05),
                            on_written=written.append).start()
    for _ in range(120):
        assert writer.submit(record())
    writer.close()
    assert store.count_requests() == 120
    assert sum(written) == 120 and len(written) < 120  # fewer transactions than records


def test_full_queue_drops_and_counts_without_blocking(store):
    dropped = []
    gate = threading.Event()
    original = store.write
    store.write = lambda records, privacy: (gate.wait(), original(records, privacy))
    writer = QueryLogWriter(store, QueryLogSettings(queue_size=5, batch_size=1, flush_interval_s=0.01),
                            on_dropped=dropped.append).start()
    time.sleep(0.05)
    started = time.perf_counter()
    accepted = sum(writer.submit(record()) for _ in range(50))
    assert time.perf_counter() - started < 0.5
    assert accepted <= 6 and sum(dropped) == 50 - accepted
    gate.set()
    writer.close()
    assert store.count_requests() == accepted


def test_retention_by_age_and_by_rows(store):
    now = time.time()
    store.write([record(ts=now - 10 * 86400)] + [record(ts=now - i) for i in range(10)], Privacy.NONE)
    assert store.apply_retention(max_age_s=86400, max_rows=1000, now=now) == 1
    assert store.count_requests() == 10
    store.apply_retention(max_age_s=86400, max_rows=4, now=now)
    assert store.count_requests() == 4
