"""`embedloop-demo`: the whole loop on real data, on loopback, with a report at the end.

Story: production is the base model; traffic comes from the dataset's easiest groups, with feedback
for a share of it; then traffic shifts to the hardest groups. The daemon declares drift, the probe
metric falls as feedback on the new groups joins the probe set, a retraining run starts, its
candidate passes its gates and is promoted (policy auto) while traffic keeps flowing. Then the
policy becomes manual and traffic shifts again, to groups in between: the next candidate, trained
on them, waits; the demo approves it through the admin API, rolls back and approves again. Beside
the traffic, a second client keeps the corpus's vectors in Qdrant on the index channel: its recall on
its own index is measured throughout — across the promotion (the channel holds, or follows a
compatible version) and after the reindex the demo then runs. Every figure in the report is measured
in the run.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import httpx
import yaml

from embedloop.client import Client
from embedloop.core.labels.probes import ProbeQuery
from embedloop.core.models.promotion import ensure_production
from embedloop.core.models.registry import CANDIDATE, PRODUCTION, VersionState, utc_epoch
from embedloop.core.models.versions import graph_key, load_encoder, packaged_base, register_version
from embedloop.core.settings import load_settings
from embedloop.core.state import State
from embedloop.demo.scenario import FULL, QUICK, Scenario, Size, build_scenario
from embedloop.demo.stored_index import CHANNEL, StoredIndex
from embedloop.demo.traffic import Traffic


@dataclass(frozen=True)
class Pace:
    size: Size
    rate: float  # requests per second
    feedback_share: float
    before_s: float
    promotion_timeout_s: float
    candidate_timeout_s: float
    retrain: dict
    training: dict
    drift_window: int


# The quick pace trains a fixed two passes at a high rate, without validation checks along the way
# (a run of ~150 pairs is over in ~20 steps), so that the whole story fits in minutes on two cores.
# Both paces train once per run (the plain objective; the default also tries the compatible one).
QUICK_PACE = Pace(QUICK, rate=12, feedback_share=0.6, before_s=20, promotion_timeout_s=600,
                  candidate_timeout_s=480, drift_window=100,
                  retrain={"min_new_pairs": 80, "validation_fraction": 0.1},
                  training={"learning_rate": 1e-4, "epochs": 2, "min_steps": 0, "evaluations": 0, "batch_size": 16,
                            "interpolation": [0.5, 1.0], "compatibility_weights": [0.0]})
FULL_PACE = Pace(FULL, rate=15, feedback_share=0.5, before_s=120, promotion_timeout_s=1500,
                 candidate_timeout_s=1200, drift_window=200,
                 retrain={"min_new_pairs": 400, "validation_fraction": 0.1},
                 training={"learning_rate": 5e-5, "epochs": 1, "batch_size": 32, "compatibility_weights": [0.0]})


@dataclass
class Events:
    marks: list[tuple[float, str]] = field(default_factory=list)

    def add(self, what: str) -> float:
        now = time.time()
        self.marks.append((now, what))
        return now


class DemoFailed(Exception):
    pass


def demo_config(pace: Pace, floor: float, policy: str, sts: Path | None) -> dict:
    return {
        "querylog": {"sample_rate": 1.0, "flush_interval_s": 0.2},
        "serving": {"alias_poll_s": 1.0},
        "drift": {"interval_s": 3, "window_size": pace.drift_window, "reference_size": 3 * pace.drift_window,
                  "consecutive": 2},
        "probes": {"interval_s": 5, "metric": "mrr@10", "floor": round(floor, 4), "max_drop": 1.0,
                   "feedback_fraction": 0.3},
        "daemon": {"trigger_cooldown_s": 10, "metrics_port": 0, "lease_ttl_s": 10},
        "retrain": {"cooldown_s": 0, **pace.retrain},
        "training": pace.training,
        # A quick run learns from ~100 pairs: any gain that is not a loss is accepted here, so the
        # manual phase has a candidate to review; the other gates stay as configured.
        "gates": {"min_gain": 0.0, **({"sts_dataset": str(sts)} if sts else {})},
        "promotion": {"policy": policy},
    }


class Demo:
    def __init__(self, dataset: Path, out: Path, quick: bool, group_field: str, port: int, sts: Path | None,
                 say) -> None:  # noqa: ANN001 - a callable(str) for status lines
        self.dataset, self.out, self.group_field, self.port, self.sts = dataset, out, group_field, port, sts
        self.pace = QUICK_PACE if quick else FULL_PACE
        self.quick = quick
        self.say = say
        self.home = out / "state"
        self.token = secrets.token_urlsafe(24)
        self.events = Events()
        self.processes: list[subprocess.Popen] = []
        self.traffic: Traffic | None = None
        self.index: StoredIndex | None = None
        self.scenario: Scenario | None = None
        self.shift_at: float | None = None
        self.second_shift_at = float("inf")
        self.rejected: set[str] = set()
        self._retrain: subprocess.Popen | None = None
        self.summary: dict = {}
        self.url = f"http://127.0.0.1:{port}"

    # -- plumbing ---------------------------------------------------------------------------------
    def write_config(self, floor: float, policy: str) -> None:
        """Write the state folder's config file; processes started after this read it."""
        config = demo_config(self.pace, floor, policy, self.sts)
        (self.home / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.configured = load_settings(self.home)

    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDLOOP_")}
        return {**clean, "EMBEDLOOP_ADMIN__TOKEN": self.token}

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.out / f"{name}.log", "a")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen([sys.executable, "-m", "embedloop.app.cli", *args, "--home", str(self.home)],
                                   env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    @staticmethod
    def stop_process(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_processes(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            self.stop_process(process)

    @cached_property
    def admin(self) -> Client:
        return Client(self.url, api_key=self.token)

    def wait(self, what: str, done, timeout: float, poll: float = 1.0):  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = done()
            if result:
                return result
            if self.index is not None:
                self.index.sample()
            self.status(what)
            time.sleep(poll)
        raise DemoFailed(f"timed out after {timeout:.0f} s waiting for: {what}")

    @cached_property
    def state(self) -> State:
        """The demo's view of its state folder, opened once (the status line reads it every second)."""
        return State(self.configured)

    def status(self, what: str) -> None:
        t, state = self.traffic, self.state
        registry = state.registry
        drift = state.checks.drift_runs(limit=1)
        probe = state.checks.probe_runs(limit=1)
        runs = state.runs.runs(1)
        parts = [what, f"production {registry.alias(PRODUCTION)}"]
        if t is not None:
            parts.append(f"{len(t.sent)} requests, {t.failures()} failed, {t.feedback_sent} feedback")
        if drift:
            parts.append(f"drift share {drift[0].figures.get('share_drifted', 0):.2f}"
                         + (" DECLARED" if drift[0].declared else ""))
        if probe:
            parts.append(f"probe MRR@10 {probe[0].metrics['mrr@10']:.3f} ({probe[0].version})")
        if runs and runs[0].status == "running":
            parts.append(f"retraining: {runs[0].phase}")
        self.say(" | ".join(parts))

    def serving_version(self, version: str) -> bool:
        recent = self.traffic.sent[-5:] if self.traffic else []
        return len(recent) == 5 and all(s.version == version for s in recent)

    # -- the story --------------------------------------------------------------------------------
    def prepare(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        self.write_config(0.0, "auto")
        settings, registry = self.state.settings, self.state.registry
        self.say("registering the base model (ONNX export, int8, parity check)")
        version = register_version(settings, registry, packaged_base())
        ensure_production(registry, version.name, actor="demo")
        self.say("measuring the base model per group to choose the shift")
        self.scenario = build_scenario(self.dataset, self.group_field, self.pace.size,
                                       load_encoder(settings, version), graph_key(version),
                                       settings.corpus_cache_dir)
        self.write_config(self.scenario.floor, "auto")
        self.state.corpus.add(self.scenario.corpus)
        self.state.probes.add([ProbeQuery(q, text, g, tuple(rel)) for q, text, g, rel in self.scenario.probes])

    def start(self) -> None:
        self.spawn("service", "serve", "--port", str(self.port))
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.processes[0].poll() is not None:
                raise DemoFailed(f"the service did not start; see {self.out / 'service.log'}")
            self.say("starting the service")
            time.sleep(1)
        self.build_index()
        self.daemon = self.spawn("daemon", "daemon")
        self.traffic = Traffic(self.url, self.pace.rate, self.pace.feedback_share)

    def build_index(self) -> None:
        """The index client's first index: a channel at production, its documents embedded into Qdrant."""
        documents = self.out / "documents.jsonl"
        with documents.open("w") as f:
            for doc_id, text in self.scenario.corpus.items():
                f.write(json.dumps({"id": doc_id, "text": text}) + "\n")
        channel = self.admin.create_channel(CHANNEL, reason="the index client's search index")
        self.run_reindex(channel.serves, "--from", str(documents))
        self.index = StoredIndex(self.url, self.configured.vectors.path or self.home / "vectors",
                                 self.scenario.questions)
        self.index.open()
        self.index.measure()

    def run_reindex(self, version: str, *args: str) -> None:
        """``embedloop reindex`` as a user runs it; the index client pauses meanwhile (local mode)."""
        if self.index is not None:
            self.index.close()
        self.events.add(f"reindex of {CHANNEL} with {version} started")
        process = self.spawn(f"reindex-{version}", "reindex", CHANNEL, "--to", version, *args,
                             "--reason", "the demo's index client")
        self.wait(f"reindex of {CHANNEL} with {version}", lambda: process.poll() is not None, 900)
        if process.returncode != 0:
            raise DemoFailed(f"the reindex failed; see {self.out / f'reindex-{version}.log'}")
        self.events.add(f"reindex done: {CHANNEL} serves {version}")
        if self.index is not None:
            self.index.open()

    def play(self) -> None:
        s, registry, store = self.scenario, self.state.registry, self.state.checks
        self.events.add(f"traffic from {', '.join(s.before)}")
        self.traffic.start("before", s.pools["before"])
        ends = time.monotonic() + self.pace.before_s
        self.wait("traffic before the shift", lambda: time.monotonic() >= ends, self.pace.before_s + 5)
        self.shift_at = self.events.add(f"shift to {', '.join(s.after)}")
        self.traffic.switch("after", s.pools["after"])

        def promoted():
            for entry in registry.history(20):
                if entry.action == "approve" and self._after_shift(entry):
                    return entry.to_version
            return None

        first = self.wait("after the shift: waiting for drift, probes, retraining, promotion", promoted,
                          self.pace.promotion_timeout_s)
        promoted_at = self.events.add(f"{first} promoted by policy auto")
        self.wait(f"hot swap to {first}", lambda: self.serving_version(first), 60, poll=0.5)
        self.wait(f"probe check of {first}", lambda: store.probe_runs(first, limit=1), 60)
        # what the index client gets after the promotion, before any reindex: a few readings
        self.wait("the index client after the promotion",
                  lambda: sum(r.at > promoted_at for r in self.index.readings) >= 3, 120)
        self.run_reindex(first)
        self.wait(f"{CHANNEL} answering with {first}", lambda: self.index.measure().queries_by == first, 60)

        self.write_config(self.scenario.floor, "manual")  # settings are read at start-up: restart the daemon
        self.stop_process(self.daemon)
        self.daemon = self.spawn("daemon", "daemon", "--wait")
        self.events.add("policy manual")
        self.wait(f"the drift reference of {first}", lambda: store.drift_runs(first, limit=1), 120)
        self.second_shift_at = self.events.add(f"shift to {', '.join(s.later)}")
        self.traffic.switch("later", s.pools["later"])
        candidate = self.wait("manual phase: waiting for the next candidate", self._next_candidate,
                              self.pace.candidate_timeout_s, poll=2.0)
        self.admin.approve(candidate, "reviewed the gate figures", actor="demo")
        self.events.add(f"{candidate} approved through the admin API")
        self.wait(f"hot swap to {candidate}", lambda: self.serving_version(candidate), 60, poll=0.5)
        back = self.admin.rollback("rehearsing a rollback", actor="demo")
        self.events.add(f"rolled back to {back.to}")
        self.wait(f"hot swap to {back.to}", lambda: self.serving_version(back.to), 60, poll=0.5)
        self.admin.approve(candidate, "approved again after the rehearsal", actor="demo")
        self.events.add(f"{candidate} approved again")
        self.wait(f"hot swap to {candidate}", lambda: self.serving_version(candidate), 60, poll=0.5)
        self.events.add("end")

    def _after_shift(self, entry) -> bool:  # noqa: ANN001
        return utc_epoch(entry.at) > self.shift_at

    def _next_candidate(self) -> str | None:
        """The waiting candidate, if there is one. The daemon starts runs on its triggers; if none is
        running well after the second shift, the demo asks for one (it says when it has too few pairs)."""
        registry = self.state.registry
        candidate = registry.alias(CANDIDATE)
        if candidate is not None and registry.state(candidate).state == VersionState.CANDIDATE:
            return candidate
        runs = self.state.runs.runs(1)
        if runs and runs[0].status == "rejected" and runs[0].version not in self.rejected:
            self.rejected.add(runs[0].version)
            self.events.add(f"{runs[0].version} rejected: {runs[0].message[:120]}")
        idle = (not runs or runs[0].status != "running") and (self._retrain is None or self._retrain.poll() is not None)
        if idle and time.time() - self.second_shift_at > 45:
            self._retrain = self.spawn("retrain", "retrain", "--force")
        return None

    def run(self) -> dict:
        """Play the story; the report is written even when it stops early (Ctrl-C, a timeout)."""
        from embedloop.demo.report import write_report

        self.out.mkdir(parents=True, exist_ok=True)
        try:
            self.prepare()
            self.start()
            self.play()
        finally:
            if self.traffic is not None:
                self.traffic.stop()
            if self.index is not None:
                self.index.close()
            self.say("stopping the service and the daemon")
            self.stop_processes()
            if self.scenario is not None:
                self.say("writing the report")
                self.summary = write_report(self.state, self.configured, self.scenario, self.traffic, self.events,
                                            self.shift_at, self.out, self.index)
            self.state.close()
        return self.summary
