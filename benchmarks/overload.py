"""Overload: goodput and refusal latency at 2x, 10x and 100x the service's capacity.

    .venv/bin/python benchmarks/overload.py [--duration 15] [--kinds 32,1] [--factors 2,10,100]

For each request kind (32 MedQuAD questions per request, then one), capacity is measured first
with a closed loop at normal load (a few connections each sending its next request when the last is
answered): texts/s answered with 200, and its p99. Then an open loop offers Poisson arrivals at
2x, 10x and 100x that capacity, in requests/s, whatever the server answers. Reported per phase:
offered and achieved texts/s, goodput (texts answered with 200 per second, counted over the
phase after its first two seconds), latency of 200s and of 429s, any 5xx or failed connection,
and the RSS of the server's processes (the largest seen). The load generator runs on the same
machine (loopback, asyncio with raw HTTP/1.1 so it costs little); it opens at most
``--max-connections`` and counts arrivals it could not send as *unsent*, so a phase whose
achieved rate falls short of its offer says so.

Targets (under 10x): goodput >= 0.9 x capacity, 429 p99 <= 50 ms, 200 p99 <= 2 x normal p99 +
``serving.max_queue_wait_s``, RSS <= 1.2 x normal, no 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import DATASETS, REPO, base_home, save

sys.path.insert(0, str(REPO))
from embedloop.core.labels.beir import read_jsonl  # noqa: E402
from tests.servers import start_server  # noqa: E402

SKIP_S = 2.0  # each phase's first seconds are not counted: the queue is filling


@dataclass
class Outcome:
    sent: float  # monotonic
    done: float
    status: int  # 0: the connection failed or timed out
    texts: int


@dataclass
class Phase:
    outcomes: list[Outcome] = field(default_factory=list)
    unsent: int = 0


def request_bytes(host: str, body: bytes) -> bytes:
    return (f"POST /v1/embeddings HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the connection may be reused)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, headers.get("connection", "").lower() != "close"


class Client:
    """Keep-alive connections to one server; a request takes an idle one or opens another."""

    def __init__(self, host: str, port: int, max_connections: int) -> None:
        self.host, self.port, self.max_connections = host, port, max_connections
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open = 0

    def can_send(self) -> bool:
        return bool(self.idle) or self.open < self.max_connections

    async def send(self, payload: bytes, texts: int, timeout: float = 60.0) -> Outcome:
        sent = time.monotonic()
        if self.idle:
            conn = self.idle.pop()
        else:
            self.open += 1
            try:
                conn = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.open -= 1
                return Outcome(sent, time.monotonic(), 0, texts)
        reader, writer = conn
        try:
            writer.write(payload)
            status, keep = await asyncio.wait_for(read_response(reader), timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            status, keep = 0, False
        if keep:
            self.idle.append(conn)
        else:
            self.open -= 1
            writer.transport.abort()  # frees the socket now, not after a graceful close
        return Outcome(sent, time.monotonic(), status, texts)


async def closed_loop(client: Client, payloads: list[bytes], texts: int, connections: int, seconds: float) -> Phase:
    phase = Phase()
    end = time.monotonic() + seconds

    async def user(i: int) -> None:
        k = i
        while time.monotonic() < end:
            phase.outcomes.append(await client.send(payloads[k % len(payloads)], texts))
            k += connections

    await asyncio.gather(*(user(i) for i in range(connections)))
    return phase


async def open_loop(client: Client, payloads: list[bytes], texts: int, rate: float, seconds: float) -> Phase:
    phase = Phase()
    rng = random.Random(7)
    tasks: set[asyncio.Task] = set()
    start = time.monotonic()
    due, k = start, 0
    while due < start + seconds:
        due += rng.expovariate(rate)
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if not client.can_send():
            phase.unsent += 1
            continue
        task = asyncio.create_task(client.send(payloads[k % len(payloads)], texts))
        task.add_done_callback(lambda t: phase.outcomes.append(t.result()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
    if tasks:
        await asyncio.wait(tasks, timeout=90)
    return phase


def quantile_ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1] * 1000


def summarize(phase: Phase, start: float, seconds: float, offered: float) -> dict:
    window = [o for o in phase.outcomes if o.sent >= start + SKIP_S]
    counted_s = seconds - SKIP_S
    ok = [o for o in window if o.status == 200]
    refused = [o for o in window if o.status == 429]
    return {
        "requests": len(window),
        "offered_texts_per_s": offered,
        "achieved_texts_per_s": sum(o.texts for o in window) / counted_s,
        "unsent": phase.unsent,
        "goodput_texts_per_s": sum(o.texts for o in ok if o.done <= start + seconds) / counted_s,
        "ok": len(ok), "refused": len(refused),
        "server_errors": sum(o.status >= 500 for o in window),
        "failed": sum(o.status == 0 for o in window),
        "other": sum(o.status not in (0, 200, 429) and o.status < 500 for o in window),
        "ok_p50_ms": quantile_ms([o.done - o.sent for o in ok], 0.5),
        "ok_p99_ms": quantile_ms([o.done - o.sent for o in ok], 0.99),
        "refused_p50_ms": quantile_ms([o.done - o.sent for o in refused], 0.5),
        "refused_p99_ms": quantile_ms([o.done - o.sent for o in refused], 0.99),
    }


class RssWatch:
    """The largest RSS of the server's process tree while a phase runs."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            procs = [self.root, *self.root.children(recursive=True)]
            self.peak = max(self.peak, sum(p.memory_info().rss for p in procs) / 2**20)

    def __enter__(self) -> "RssWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


async def settle(client: Client, payload: bytes, texts: int) -> None:
    """Wait until the server answers a request with 200 again (its queue has drained)."""
    for _ in range(120):
        if (await client.send(payload, texts)).status == 200:
            return
        await asyncio.sleep(0.5)


async def run_kind(url: str, pid: int, texts: list[str], per_request: int, args, wait_s: float) -> dict:
    host, port = url.removeprefix("http://").split(":")
    client = Client(host, int(port), args.max_connections)
    rng = random.Random(per_request)
    payloads = [request_bytes(host, json.dumps({"model": "embedloop", "input": rng.sample(texts, per_request)
                                                if per_request > 1 else rng.choice(texts)}).encode())
                for _ in range(500)]
    connections = args.normal_connections if per_request > 1 else args.normal_connections * 8
    await closed_loop(client, payloads, per_request, connections, 3)  # warm-up
    start = time.monotonic()
    with RssWatch(pid) as rss:
        phase = await closed_loop(client, payloads, per_request, connections, args.duration)
        normal = summarize(phase, start, args.duration, 0.0)
        normal["offered_texts_per_s"] = normal["achieved_texts_per_s"]
    normal.update(connections=connections, rss_mb=rss.peak)
    capacity = normal["goodput_texts_per_s"]
    print(f"{per_request}-text capacity {capacity:.0f} texts/s, 200 p99 {normal['ok_p99_ms']:.0f} ms "
          f"({connections} connections)", flush=True)
    result = {"normal": normal, "overload": {}}
    for factor in args.factors:
        await settle(client, payloads[0], per_request)
        rate = factor * capacity / per_request
        start = time.monotonic()
        with RssWatch(pid) as rss:
            phase = summarize(await open_loop(client, payloads, per_request, rate, args.duration), start,
                              args.duration, factor * capacity)
        phase["rss_mb"] = rss.peak
        phase["goodput_ratio"] = phase["goodput_texts_per_s"] / capacity
        phase["targets"] = {
            "goodput_ge_0.9_capacity": phase["goodput_ratio"] >= 0.9,
            "refused_p99_le_50ms": phase["refused_p99_ms"] is None or phase["refused_p99_ms"] <= 50,
            "ok_p99_le_2x_normal_plus_wait": phase["ok_p99_ms"] is not None
            and phase["ok_p99_ms"] <= 2 * normal["ok_p99_ms"] + wait_s * 1000,
            "rss_le_1.2x_normal": phase["rss_mb"] <= 1.2 * normal["rss_mb"],
            "no_5xx": phase["server_errors"] == 0,
        }
        result["overload"][f"{factor:g}x"] = phase
        fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
        print(f"  {factor:g}x: offered {phase['offered_texts_per_s']:.0f} (sent {phase['achieved_texts_per_s']:.0f}) "
              f"texts/s, goodput {phase['goodput_texts_per_s']:.0f} ({phase['goodput_ratio']:.2f} capacity), "
              f"200 p99 {fmt(phase['ok_p99_ms'])} ms, 429 p50/p99 {fmt(phase['refused_p50_ms'])}/"
              f"{fmt(phase['refused_p99_ms'])} ms, 5xx {phase['server_errors']}, failed {phase['failed']}, "
              f"unsent {phase['unsent']}, RSS {phase['rss_mb']:.0f} MB", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--kinds", default="32,1", help="texts per request, comma-separated")
    parser.add_argument("--factors", default="2,10,100", help="offered load as multiples of capacity")
    parser.add_argument("--normal-connections", type=int, default=16,
                        help="closed-loop connections at normal load (x8 for one-text requests)")
    parser.add_argument("--max-connections", type=int, default=2000)
    args = parser.parse_args()
    args.factors = [float(f) for f in args.factors.split(",")]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    work = Path(tempfile.mkdtemp(prefix="embedloop-overload-"))
    settings, _ = base_home(work / "home")
    texts = [q["text"] for q in read_jsonl(DATASETS / "medquad" / "queries.jsonl")]
    server = start_server(settings.home, work / "server.log", env={"EMBEDLOOP_QUERYLOG__SAMPLE_RATE": "0.1"})
    wait_s = settings.serving.max_queue_wait_s
    results = {}
    try:
        for per_request in (int(k) for k in args.kinds.split(",")):
            results[f"{per_request}_text"] = asyncio.run(
                run_kind(server.url, server.process.pid, texts, per_request, args, wait_s))
    finally:
        server.stop()
    save("overload", {"duration_s": args.duration, "max_queue_wait_s": wait_s,
                      "max_queue_texts": settings.serving.max_queue_texts, "kinds": results})


if __name__ == "__main__":
    main()
