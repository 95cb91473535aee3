"""Serving throughput as ratios measured in one run, medians of several repeats.

    .venv/bin/python benchmarks/serving.py [--duration 10] [--repeats 3]

(a) sentence-transformers torch fp32 in-process, (b) the int8 ONNX graph in-process (both in
batches of 32), (c) the HTTP service with single-text requests at concurrency 32, (d) the HTTP
service with 32-text requests, (e) (c) with the query log off vs on. Load comes from wrk (a
Lua script cycles through real MedQuAD questions). Also: p50/p99 latency, non-200 responses,
and the service's RSS (all processes) with two versions loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DATASETS, REPO, base_home, save

sys.path.insert(0, str(REPO))
from tests.servers import start_server  # noqa: E402  (one way to start and stop a server)

from embedloop.core.datasets import read_jsonl  # noqa: E402
from embedloop.core.encoder import OnnxEncoder  # noqa: E402
from embedloop.core.versions import register_version  # noqa: E402

LUA = """
local bodies = {
%s
}
local i = math.random(#bodies)
request = function()
  i = (i %% #bodies) + 1
  return wrk.format("POST", "/v1/embeddings", {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"non2xx\\": %%d, \\"socket_errors\\": %%d, " ..
    "\\"p50_us\\": %%d, \\"p90_us\\": %%d, \\"p99_us\\": %%d}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def wrk_script(texts: list[str], per_request: int, path: Path, n_bodies: int = 2000) -> Path:
    rng = random.Random(0)
    bodies = []
    for _ in range(n_bodies):
        chunk = rng.sample(texts, per_request)
        body = json.dumps({"model": "embedloop", "input": chunk[0] if per_request == 1 else chunk,
                           "encoding_format": "float"})
        bodies.append(f"  [==[{body}]==],")
    path.write_text(LUA % "\n".join(bodies))
    return path


def run_wrk(url: str, script: Path, duration: float, concurrency: int) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{duration:g}s", "--timeout", "30s", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout
    result = json.loads(re.search(r"RESULT (\{.*\})", out).group(1))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def wait_idle(url: str, timeout: float = 60.0) -> None:
    """Let the server finish what the previous run left before the next run starts."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics").text
        depth = re.search(r"^embedloop_queue_depth_texts (\S+)", text, re.M)
        if depth is None or float(depth.group(1)) == 0:
            break
        time.sleep(0.5)
    time.sleep(1.0)


def in_process_rate(encode, texts: list[str]) -> float:
    started = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - started)


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--in-process-texts", type=int, default=2048)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    from sentence_transformers import SentenceTransformer

    work = Path(tempfile.mkdtemp(prefix="embedloop-serving-"))
    settings, registry = base_home(work / "home")
    v1 = registry.get("v1")
    texts = [q["text"] for q in read_jsonl(DATASETS / "medquad" / "queries.jsonl")]
    random.Random(1).shuffle(texts)
    sample = texts[: args.in_process_texts]

    # (a) and (b), interleaved so both see the same machine noise.
    torch_model = SentenceTransformer(str(settings.models_dir / v1.artifact_dir / "checkpoint"), device="cpu")
    # The in-process baseline at its best: every core, ONNX Runtime's default thread spinning.
    int8 = OnnxEncoder(settings.models_dir / v1.artifact_dir, "int8", allow_spinning=True, use_gpu=False)
    int8.encode(sample[:64]), torch_model.encode(sample[:64])
    torch_rates, int8_rates = [], []
    for _ in range(args.repeats):
        torch_rates.append(in_process_rate(lambda t: torch_model.encode(t, batch_size=32), sample))
        int8_rates.append(in_process_rate(lambda t: int8.encode(t, batch_size=32), sample))
    del torch_model, int8
    a, b = statistics.median(torch_rates), statistics.median(int8_rates)
    print(f"(a) torch fp32 in-process: {a:.0f} texts/s   (b) int8 in-process: {b:.0f} texts/s")

    if "v2" not in {v.name for v in registry.versions()}:
        register_version(settings, registry, settings.models_dir / v1.artifact_dir / "checkpoint")
    single = wrk_script(texts, 1, work / "single.lua")
    batch = wrk_script(texts, 32, work / "batch.lua")

    def serve_and_measure(querylog: bool, scripts: dict[str, Path]) -> tuple[dict, float | None]:
        env = {"EMBEDLOOP_QUERYLOG__ENABLED": str(querylog).lower()}
        server = start_server(settings.home, work / f"server-{querylog}.log", env=env)
        try:
            run_wrk(server.url, single, 3, args.concurrency)  # warm-up
            runs: dict[str, list[dict]] = {name: [] for name in scripts}
            for _ in range(args.repeats):
                for name, script in scripts.items():
                    wait_idle(server.url)
                    runs[name].append(run_wrk(server.url, script, args.duration, args.concurrency))
            rss = None
            if querylog:
                import httpx

                httpx.post(f"{server.url}/v1/embeddings", json={"model": "embedloop@v2", "input": "load v2"})
                rss = rss_mb(server.process.pid)
            return runs, rss
        finally:
            server.stop()

    on_runs, rss = serve_and_measure(True, {"single": single, "batch32": batch})
    off_runs, _ = serve_and_measure(False, {"single": single})

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    c = med(on_runs["single"], "rps")
    d = med(on_runs["batch32"], "rps") * 32
    c_off = med(off_runs["single"], "rps")
    p50, p99 = med(on_runs["single"], "p50_us") / 1000, med(on_runs["single"], "p99_us") / 1000
    non200 = sum(r["non2xx"] + r["socket_errors"] for runs in on_runs.values() for r in runs)
    ratios = {
        "b_over_a": b / a,
        "c_over_b": c / b,
        "d_over_b": d / b,
        "querylog_cost": 1 - c / c_off,
        "p99_over_p50_single_c32": p99 / p50,
    }
    targets = {
        "b_over_a": ratios["b_over_a"] >= 2.0,
        "c_over_b": ratios["c_over_b"] >= 0.6,
        "d_over_b": ratios["d_over_b"] >= 0.9,
        "querylog_cost": ratios["querylog_cost"] <= 0.05,
        "p99_over_p50_single_c32": ratios["p99_over_p50_single_c32"] <= 4.0,
        "zero_non200": non200 == 0,
        "rss_two_versions": rss is not None and rss <= 600,
    }
    print(f"(c) HTTP single text, c={args.concurrency}: {c:.0f} texts/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms")
    print(f"(d) HTTP 32 texts/request: {d:.0f} texts/s")
    print(f"(e) query log off: {c_off:.0f} texts/s -> cost {ratios['querylog_cost']:.1%}")
    print(f"non-200 responses: {non200}   RSS with two versions: {rss:.0f} MB")
    for name, value in ratios.items():
        print(f"  {name:28s} {value:.3f}  {'ok' if targets[name] else 'MISSED'}")
    save("serving", {
        "settings": {"duration_s": args.duration, "repeats": args.repeats, "concurrency": args.concurrency},
        "texts_per_second": {"a_torch_fp32": a, "b_int8": b, "c_http_single": c, "d_http_batch32": d,
                             "c_http_single_querylog_off": c_off},
        "latency_ms_single_c32": {"p50": p50, "p99": p99},
        "non200": non200, "rss_mb_two_versions": rss, "ratios": ratios, "targets_met": targets,
        "runs": {"a": torch_rates, "b": int8_rates, "querylog_on": on_runs, "querylog_off": off_runs},
    })


if __name__ == "__main__":
    main()
