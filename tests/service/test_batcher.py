import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from embedloop.service.batcher import Batcher, BatchLimits, DeadlineExceeded


class FakeModel:
    """Embeds token-id arrays as [first id, length]; records every batch it sees."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None):
        self.batches: list[list[int]] = []
        self.delay, self.gate = delay, gate

    def __call__(self, batch):
        if self.gate is not None:
            self.gate.wait(5)
        time.sleep(self.delay)
        self.batches.append([int(ids.shape[0]) for ids in batch])
        return np.array([[ids[0], ids.shape[0]] for ids in batch], dtype=np.float32)


def ids(first: int, length: int = 4) -> np.ndarray:
    return np.full(length, first, dtype=np.int64)


def run(coro):
    return asyncio.run(coro)


def later(seconds: float) -> float:
    return time.monotonic() + seconds


def test_requests_arriving_together_share_forward_passes():
    model = FakeModel(delay=0.01)

    async def main():
        batcher = Batcher(model, ThreadPoolExecutor(1), BatchLimits(max_items=64, max_wait_s=0.005))
        results = await asyncio.gather(*(batcher.submit([ids(i), ids(i + 100)], later(5)) for i in range(20)))
        await batcher.stop()
        return results

    results = run(main())
    for i, out in enumerate(results):  # every request gets its own rows back, in order
        assert out[:, 0].tolist() == [i, i + 100]
    assert sum(len(b) for b in model.batches) == 40
    assert len(model.batches) < 10


def test_item_and_token_limits_cut_batches():
    model = FakeModel()

    async def main():
        batcher = Batcher(model, ThreadPoolExecutor(1), BatchLimits(max_items=4, max_tokens=40, max_wait_s=0.01))
        await asyncio.gather(
            batcher.submit([ids(1, 5)] * 6, later(5)),   # 6 short texts: item limit 4
            batcher.submit([ids(2, 20)] * 3, later(5)),  # 20 tokens each: 2 per batch (40 tokens)
        )
        await batcher.stop()

    run(main())
    for batch in model.batches:
        assert len(batch) <= 4 and len(batch) * max(batch) <= 40
    assert sorted(x for b in model.batches for x in b) == [5] * 6 + [20] * 3


def test_single_text_longer_than_token_limit_still_runs_alone():
    model = FakeModel()

    async def main():
        batcher = Batcher(model, ThreadPoolExecutor(1), BatchLimits(max_tokens=16, max_wait_s=0))
        out = await batcher.submit([ids(3, 50)], later(5))
        await batcher.stop()
        return out

    assert run(main())[0].tolist() == [3, 50]
    assert model.batches == [[50]]


def test_expired_requests_time_out_and_are_not_computed():
    gate = threading.Event()
    model = FakeModel(gate=gate)

    async def main():
        batcher = Batcher(model, ThreadPoolExecutor(1), BatchLimits(max_items=1, max_wait_s=0))
        blocker = asyncio.ensure_future(batcher.submit([ids(1)], later(5)))
        await asyncio.sleep(0.05)
        with pytest.raises(DeadlineExceeded):
            await batcher.submit([ids(2)] * 3, later(0.05))
        gate.set()
        await blocker
        await asyncio.sleep(0.05)
        await batcher.stop()

    run(main())
    assert model.batches == [[4]]  # only the blocker ran; the expired texts were skipped


def test_a_failing_model_fails_only_its_batch():
    calls = []

    def flaky(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return np.ones((len(batch), 2), dtype=np.float32)

    async def main():
        batcher = Batcher(flaky, ThreadPoolExecutor(1), BatchLimits(max_wait_s=0))
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.submit([ids(1)], later(5))
        out = await batcher.submit([ids(2)], later(5))
        await batcher.stop()
        return out

    assert run(main()).shape == (1, 2)


@pytest.mark.parametrize("in_flight", [1, 2])
def test_batches_in_flight_are_bounded_by_the_setting(in_flight):
    running, peak, lock = [0], [0], threading.Lock()

    def model(batch):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return np.array([[ids[0], ids.shape[0]] for ids in batch], dtype=np.float32)

    async def main():
        batcher = Batcher(model, ThreadPoolExecutor(4), BatchLimits(max_items=2, max_wait_s=0, in_flight=in_flight))
        results = await asyncio.gather(*(batcher.submit([ids(i)], later(5)) for i in range(12)))
        await asyncio.sleep(0.01)  # the last batch's task ends right after its results are handed out
        assert batcher.idle
        await batcher.stop()
        return results

    results = run(main())
    assert [int(r[0, 0]) for r in results] == list(range(12))
    assert peak[0] == in_flight


class Recorder:
    def __init__(self):
        self.events: list[tuple] = []

    def batch_finished(self, texts, tokens, seconds):
        self.events.append(("finished", texts, tokens, seconds is not None and seconds >= 0.02))


def test_the_observer_hears_of_each_batch_with_its_texts_tokens_and_time():
    recorder = Recorder()

    async def main(model):
        batcher = Batcher(model, ThreadPoolExecutor(1), BatchLimits(max_items=3, max_wait_s=0), observer=recorder)
        try:
            await batcher.submit([ids(i, length=i + 1) for i in range(5)], later(5))
        finally:
            await batcher.stop()

    run(main(FakeModel(delay=0.02)))
    assert recorder.events == [("finished", 3, 6, True), ("finished", 2, 9, True)]
    recorder.events.clear()

    def broken(batch):
        raise RuntimeError("model failed")

    with pytest.raises(RuntimeError):
        run(main(broken))
    assert recorder.events[:1] == [("finished", 3, 6, False)]  # failed: no time to learn from
