"""One retraining run, start to finish.

lease -> clean what an interrupted run left -> assemble data -> mine hard negatives with the
parent -> fine-tune -> choose the interpolation on validation -> export + int8 + parity -> gates
-> register as ``candidate`` (or ``rejected`` with its reasons). Applying the promotion policy
is the caller's business (the command line and the daemon share one entry point for it).
"""

from __future__ import annotations

import logging
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from embedloop.core.encoder import OnnxEncoder
from embedloop.core.evaluation import cached_corpus_embeddings
from embedloop.core.feedback import FeedbackStore
from embedloop.core.probes import ProbeStore
from embedloop.core.promotion import mark_candidate
from embedloop.core.registry import PRODUCTION, ModelVersion, Registry
from embedloop.core.settings import Settings
from embedloop.core.versions import (
    Assessment,
    graph_key,
    load_encoder,
    open_registry,
    recover,
    register_version,
    version_dir,
)
from embedloop.retrain.data import TrainingData, assemble
from embedloop.retrain.finetune import choose_interpolation, load_checkpoint, train
from embedloop.retrain.gates import run_gates
from embedloop.retrain.mining import ServedEmbeddings, mine
from embedloop.retrain.runs import Heartbeat, RunStore

log = logging.getLogger(__name__)
ACTOR = "embedloop-retrain"
Progress = Callable[[str, int, int], None]


class RetrainError(Exception):
    """A run that cannot start (nothing in production, …)."""


@dataclass
class RunResult:
    status: str  # succeeded | rejected | skipped | dry-run
    message: str
    run_id: int | None = None
    version: str | None = None
    parent: str | None = None
    data: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def retrain(settings: Settings, trigger: str = "manual", *, dry_run: bool = False, force: bool = False,
            progress: Progress | None = None) -> RunResult:
    """Run once. ``force`` ignores the cooldown (not the minimum of new pairs)."""
    registry = open_registry(settings)
    runs = RunStore(settings.monitoring_url)
    with Heartbeat(settings.monitoring_url, settings.retrain.lease_ttl_s) as heartbeat:
        for run_id in runs.fail_interrupted():
            log.warning("retraining run %s was interrupted; marked failed", run_id)
        recover(settings, registry)
        shutil.rmtree(settings.runs_dir, ignore_errors=True)
        production = registry.alias(PRODUCTION)
        if production is None:
            raise RetrainError("nothing is in production: run `embedloop init` first")
        parent = registry.get(production)
        r = settings.retrain
        last = runs.last_ended_at()
        if not (dry_run or force) and last is not None and time.time() - last < r.cooldown_s:
            return RunResult("skipped", f"cooldown: the last run ended {time.time() - last:.0f} s ago "
                             f"(retrain.cooldown_s = {r.cooldown_s:g})", parent=parent.name)
        data = assemble(FeedbackStore(settings.monitoring_url), parent, r)
        if data.new_pairs < r.min_new_pairs:
            return RunResult("skipped", f"{data.new_pairs} new feedback pairs since {parent.name}; a run needs "
                             f"{r.min_new_pairs} (retrain.min_new_pairs)", parent=parent.name, data=data.summary())
        if dry_run:
            return RunResult("dry-run", f"would train {parent.name} on {len(data.train)} pairs "
                             f"({data.new_pairs} new, {data.replayed} replayed), validate on {len(data.validation)}",
                             parent=parent.name, data=data.summary())
        run_id = runs.start(trigger, parent.name)
        try:
            result = _run(settings, registry, runs, run_id, parent, data, trigger, heartbeat, progress)
        except BaseException as exc:
            runs.finish(run_id, "failed", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            shutil.rmtree(settings.runs_dir / str(run_id), ignore_errors=True)
        runs.finish(run_id, result.status, result.message, result.version, result.details)
        return result


def _run(settings: Settings, registry: Registry, runs: RunStore, run_id: int, parent: ModelVersion,
         data: TrainingData, trigger: str, heartbeat: Heartbeat, progress: Progress | None) -> RunResult:
    r, timings, started = settings.retrain, {}, time.perf_counter()
    work = settings.runs_dir / str(run_id)
    work.mkdir(parents=True, exist_ok=True)
    report = progress or (lambda *_: None)

    def phase(name: str) -> None:
        now = time.perf_counter()
        timings[name] = now
        runs.phase(run_id, name)
        report(name, 0, 0)

    phase("mining")
    parent_checkpoint = version_dir(settings, parent) / parent.manifest["checkpoint"]
    parent_encoder = load_encoder(settings, parent)
    doc_ids, corpus = FeedbackStore(settings.monitoring_url).corpus()
    vectors = cached_corpus_embeddings(parent_encoder, graph_key(parent), doc_ids, corpus, settings.corpus_cache_dir,
                                       lambda d, t: report("embedding corpus", d, t))
    embeddings = ServedEmbeddings(parent_encoder, vectors, corpus)
    examples, mined = mine(load_checkpoint(parent_checkpoint), embeddings, data.train, r)

    phase("training")
    tuned = train(parent_checkpoint, examples, r, work, progress)

    phase("interpolating")
    alpha, validation = choose_interpolation(parent_checkpoint, tuned, embeddings, data.validation, r, progress)
    tuned.max_seq_length = int(parent.manifest["max_seq_length"])  # serve as long texts as the parent
    checkpoint = work / "checkpoint"
    tuned.save(str(checkpoint), create_model_card=False)

    phase("exporting")
    lineage = {"parent": parent.name, "trigger": trigger, "run_id": run_id, "data": data.summary(),
               "mining": mined, "interpolation": {"alpha": alpha, "validation": validation},
               "settings": r.model_dump(mode="json", exclude={"webhook_url"})}

    def assess(folder: Path, manifest: dict) -> Assessment:
        phase("gating")
        candidate = OnnxEncoder(folder, "int8", manifest=manifest, use_gpu=False)
        production_name = registry.alias(PRODUCTION)
        production = registry.get(production_name)
        gates = run_gates(settings, candidate, folder, manifest,
                          (graph_key(production), load_encoder(settings, production)), parent_encoder,
                          ProbeStore(settings.monitoring_url).load(),
                          registry.alias_moved_at(PRODUCTION),
                          lambda d, t: report("embedding corpus", d, t))
        gates.figures["against"] = production_name
        if heartbeat.lost:
            raise RetrainError("lost the retraining lease; not registering")
        phase("registering")
        return Assessment({"gates": gates.as_dict()}, "candidate" if gates.passed else "rejected", gates.reasons)

    version = register_version(settings, registry, checkpoint, parent=parent.name, training=lineage,
                               actor=ACTOR, on_step=lambda step: report(step, 0, 0), assess=assess)
    gates = version.metrics["gates"]
    ends = {**timings, "end": time.perf_counter()}
    names = list(ends)
    lineage_timings = {names[i]: round(ends[names[i + 1]] - ends[names[i]], 1) for i in range(len(names) - 1)}
    details = {"data": data.summary(), "mining": mined, "alpha": alpha, "gates": gates,
               "seconds": {**lineage_timings, "total": round(time.perf_counter() - started, 1)},
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if not gates["passed"]:
        return RunResult("rejected", "; ".join(gates["reasons"]), run_id, version.name, parent.name,
                         data.summary(), details)
    mark_candidate(settings, registry, version.name, actor=ACTOR)
    metric = gates["metric"]
    return RunResult("succeeded", f"{version.name} is a candidate: probe {metric} "
                     f"{gates['candidate_probe'][metric]:.4f} vs {gates['production_probe'][metric]:.4f}",
                     run_id, version.name, parent.name, data.summary(), details)
