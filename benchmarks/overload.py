"""Overload: goodput and refusal latency at 2x, 10x and 100x the service's capacity.

    .venv/bin/python benchmarks/overload.py [--duration 15] [--kinds 32,1] [--factors 2,10,100]
        [--env EMBEDLOOP_SERVING__WORKERS=2 ... --name overload-two-workers]

For each request kind (32 MedQuAD questions per request, then one), capacity is measured first: the
texts/s a closed loop gets answered while it keeps 512 texts in flight (every batch slot full) on a
server with admission out of the way (a queue limit nobody reaches). Then, on the server as
configured, normal load: a closed loop keeping 256 texts in flight, for its p99 and RSS. Then an
open loop offers Poisson arrivals at 2x, 10x and 100x capacity, in requests/s, whatever the server
answers. Reported per phase: offered and sent texts/s, goodput (texts answered with 200 per
second, counted after the phase's first two seconds), latency of 200s and of 429s, any 5xx or
failed connection, the RSS of the server's processes (the largest seen), and the cores kept busy
by the server and by the load generator. The generator runs on the same machine (loopback, asyncio
with raw HTTP/1.1 so it costs little); it opens at most ``--max-connections`` and counts arrivals
it could not send as *unsent*, so a phase whose sent rate falls short of its offer says so.

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

from common import DATASETS, REPO, base_home, cpu_seconds, rss_mb, save

sys.path.insert(0, str(REPO))
from embedloop.core.labels.beir import read_jsonl  # noqa: E402
from tests.servers import start_server  # noqa: E402

SKIP_S = 2.0  # each phase's first seconds are not counted: the queue is filling
IDLE_S = 2.0  # keep-alive connections idle longer are closed, not reused (the server's timeout is 5 s)


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
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []  # oldest first
        self.open = 0
        self.failures: dict[str, int] = {}  # exception name -> count

    def can_send(self) -> bool:
        return bool(self.idle) or self.open < self.max_connections

    async def send(self, payload: bytes, texts: int, timeout: float = 60.0) -> Outcome:
        sent = time.monotonic()
        while self.idle and sent - self.idle[0][2] > IDLE_S:  # the server may have closed it already
            self.open -= 1
            self.idle.pop(0)[1].transport.abort()
        if self.idle:
            conn = self.idle.pop()[:2]
        else:
            self.open += 1
            try:
                conn = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                self.open -= 1
                self.failures[type(exc).__name__] = self.failures.get(type(exc).__name__, 0) + 1
                return Outcome(sent, time.monotonic(), 0, texts)
        reader, writer = conn
        try:
            writer.write(payload)
            status, keep = await asyncio.wait_for(read_response(reader), timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            status, keep = 0, False
            self.failures[type(exc).__name__] = self.failures.get(type(exc).__name__, 0) + 1
        if keep:
            self.idle.append((reader, writer, time.monotonic()))
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


class Busy:
    """Cores kept busy by the server's processes and by this load generator since it was made."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.wall, self.server, self.client = time.monotonic(), self._server_cpu(), time.process_time()

    def _server_cpu(self) -> float | None:
        try:
            return cpu_seconds(self.pid)
        except OSError:  # no file descriptor left (the generator at 100x): not measured
            return None

    def cores(self) -> dict:
        wall, server = time.monotonic() - self.wall, self._server_cpu()
        return {"server_cores": None if server is None or self.server is None else (server - self.server) / wall,
                "client_cores": (time.process_time() - self.client) / wall}


class RssWatch:
    """The largest RSS of the server's process tree while a phase runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except OSError:  # no file descriptor left at 100x: skip this sample
                continue

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


def payloads_for(host: str, texts: list[str], per_request: int) -> list[bytes]:
    rng = random.Random(per_request)
    return [request_bytes(host, json.dumps({"model": "embedloop", "input": rng.sample(texts, per_request)
                                            if per_request > 1 else rng.choice(texts)}).encode())
            for _ in range(500)]


async def closed_phase(url: str, pid: int, texts: list[str], per_request: int, in_flight_texts: int,
                       seconds: float) -> dict:
    """A closed loop keeping ``in_flight_texts`` texts in requests at all times."""
    host, port = url.removeprefix("http://").split(":")
    client = Client(host, int(port), 4 * in_flight_texts)
    payloads = payloads_for(host, texts, per_request)
    connections = max(1, in_flight_texts // per_request)
    await closed_loop(client, payloads, per_request, connections, 3)  # warm-up
    start, busy = time.monotonic(), Busy(pid)
    with RssWatch(pid) as rss:
        result = summarize(await closed_loop(client, payloads, per_request, connections, seconds), start, seconds, 0)
    result.update(offered_texts_per_s=result["achieved_texts_per_s"], connections=connections, rss_mb=rss.peak,
                  **busy.cores())
    return result


async def overload_phases(url: str, pid: int, texts: list[str], per_request: int, capacity: float,
                          normal: dict, args, wait_s: float) -> dict:
    host, port = url.removeprefix("http://").split(":")
    client = Client(host, int(port), args.max_connections)
    payloads = payloads_for(host, texts, per_request)
    phases = {}
    for factor in args.factors:
        await settle(client, payloads[0], per_request)
        client.failures = {}
        start, busy = time.monotonic(), Busy(pid)
        with RssWatch(pid) as rss:
            phase = summarize(await open_loop(client, payloads, per_request, factor * capacity / per_request,
                                              args.duration), start, args.duration, factor * capacity)
        phase.update(rss_mb=rss.peak, failures=client.failures, **busy.cores())
        phase["goodput_ratio"] = phase["goodput_texts_per_s"] / capacity
        phase["targets"] = {
            "goodput_ge_0.9_capacity": phase["goodput_ratio"] >= 0.9,
            "refused_p99_le_50ms": phase["refused_p99_ms"] is None or phase["refused_p99_ms"] <= 50,
            "ok_p99_le_2x_normal_plus_wait": phase["ok_p99_ms"] is not None
            and phase["ok_p99_ms"] <= 2 * normal["ok_p99_ms"] + wait_s * 1000,
            "rss_le_1.2x_normal": phase["rss_mb"] <= 1.2 * normal["rss_mb"],
            "no_5xx": phase["server_errors"] == 0,
        }
        phases[f"{factor:g}x"] = phase
        print(f"  {factor:g}x: offered {phase['offered_texts_per_s']:.0f} (sent {phase['achieved_texts_per_s']:.0f}) "
              f"texts/s, goodput {phase['goodput_texts_per_s']:.0f} ({phase['goodput_ratio']:.2f} capacity), "
              f"200 p99 {fmt(phase['ok_p99_ms'])} ms, 429 p50/p99 {fmt(phase['refused_p50_ms'])}/"
              f"{fmt(phase['refused_p99_ms'])} ms, 5xx {phase['server_errors']}, failed {phase['failed']}, "
              f"unsent {phase['unsent']}, RSS {phase['rss_mb']:.0f} MB, cores server {fmt(phase['server_cores'], 2)} "
              f"client {phase['client_cores']:.2f}", flush=True)
    return phases


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--kinds", default="32,1", help="texts per request, comma-separated")
    parser.add_argument("--factors", default="2,10,100", help="offered load as multiples of capacity")
    parser.add_argument("--saturating-texts", type=int, default=512,
                        help="texts in flight while capacity is measured (admission off): enough to keep "
                        "every batch slot full")
    parser.add_argument("--normal-texts", type=int, default=256,
                        help="texts in flight at normal load (on the server as configured)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="server setting for this run, e.g. EMBEDLOOP_SERVING__WORKERS=2")
    parser.add_argument("--max-connections", type=int, default=2000)
    parser.add_argument("--name", default="overload", help="result file name (benchmarks/results/NAME.json)")
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
    kinds = [int(k) for k in args.kinds.split(",")]
    server_env = dict(item.split("=", 1) for item in args.env)
    wait_s = float(server_env.get("EMBEDLOOP_SERVING__MAX_QUEUE_WAIT_S", settings.serving.max_queue_wait_s))
    results = {f"{k}_text": {} for k in kinds}

    # Capacity: the model kept saturated with admission out of the way (nothing is ever refused).
    unbounded = start_server(settings.home, work / "server-unbounded.log",
                             env={**server_env, "EMBEDLOOP_SERVING__MAX_QUEUE_WAIT_S": "600",
                                  "EMBEDLOOP_SERVING__MAX_QUEUE_TEXTS": "1000000"})
    try:
        for k in kinds:
            cap = asyncio.run(closed_phase(unbounded.url, unbounded.process.pid, texts, k, args.saturating_texts,
                                           args.duration))
            results[f"{k}_text"]["capacity"] = cap
            print(f"{k}-text capacity {cap['goodput_texts_per_s']:.0f} texts/s ({cap['connections']} connections, "
                  f"cores server {cap['server_cores']:.2f} client {cap['client_cores']:.2f})", flush=True)
    finally:
        unbounded.stop()

    server = start_server(settings.home, work / "server.log", env=server_env)
    try:
        for k in kinds:
            kind = results[f"{k}_text"]
            kind["normal"] = normal = asyncio.run(closed_phase(server.url, server.process.pid, texts, k,
                                                               args.normal_texts, args.duration))
            print(f"{k}-text normal load ({normal['connections']} connections): "
                  f"{normal['goodput_texts_per_s']:.0f} texts/s, 200 p99 {fmt(normal['ok_p99_ms'])} ms, "
                  f"{normal['refused']} refused, RSS {normal['rss_mb']:.0f} MB", flush=True)
            kind["overload"] = asyncio.run(overload_phases(server.url, server.process.pid, texts, k,
                                                           kind["capacity"]["goodput_texts_per_s"], normal, args,
                                                           wait_s))
    finally:
        server.stop()
    save(args.name, {"duration_s": args.duration, "server_env": server_env, "max_queue_wait_s": wait_s,
                      "max_queue_texts": settings.serving.max_queue_texts, "kinds": results})


if __name__ == "__main__":
    main()
