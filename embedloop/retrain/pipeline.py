"""One retraining run, start to finish.

lease -> clean what an interrupted run left -> assemble data -> mine hard negatives with the
parent -> fine-tune and choose the interpolation on validation, once per compatibility weight ->
choose the weight on validation -> export + int8 + parity -> gates -> register as ``candidate``
(or ``rejected`` with its reasons). Applying the promotion policy is the caller's business (the
command line and the daemon share one entry point for it).
"""

from __future__ import annotations

import logging
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedloop.core.evaluation.corpus_cache import cached_corpus_embeddings
from embedloop.core.history.runs import RunStatus
from embedloop.core.labels import split
from embedloop.core.models.adapters import adapter_file
from embedloop.core.models.artifacts import sha256_file
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.models.export import INT8_GRAPH
from embedloop.core.models.registry import PRODUCTION, ModelVersion, VersionState
from embedloop.core.models.versions import Assessment, graph_key, load_encoder, recover, register_version, version_dir
from embedloop.core.progress import Progress, no_progress
from embedloop.core.state import State
from embedloop.retrain.data import TrainingData, assemble, held_out_texts
from embedloop.retrain.finetune import load_checkpoint, train
from embedloop.retrain.gates import Gates, ServedGraph
from embedloop.retrain.heartbeat import LEASE_NAME, Heartbeat
from embedloop.retrain.mining import Example, ServedEmbeddings, mine
from embedloop.retrain.screening import screen
from embedloop.retrain.validation import ValidationSet, choose_interpolation, choose_weight

log = logging.getLogger(__name__)
ACTOR = "embedloop-retrain"
PHASES = ("mining", "training", "interpolating", "exporting", "gating", "registering")


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


def retrain(state: State, trigger: str = "manual", *, dry_run: bool = False, force: bool = False,
            progress: Progress = no_progress) -> RunResult:
    """Run once. ``force`` ignores the cooldown (not the minimum of new pairs)."""
    settings, registry, runs = state.settings, state.registry, state.runs
    with Heartbeat(state.lease(LEASE_NAME, settings.retrain.lease_ttl_s)) as heartbeat:
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
        held_out = held_out_texts(settings.gates.retention_dataset)
        data = assemble(state.feedback, parent, r, settings.training.seed, held_out)
        if data.new_pairs < r.min_new_pairs:
            return RunResult("skipped", f"{data.account(parent.name)}. A run needs {r.min_new_pairs} new pairs to "
                             "train on (retrain.min_new_pairs)", parent=parent.name, data=data.summary())
        if dry_run:
            return RunResult("dry-run", f"would train {parent.name}: {data.account(parent.name)}",
                             parent=parent.name, data=data.summary())
        run_id = runs.start(trigger, parent.name)
        try:
            result = Run(state, run_id, parent, data, trigger, heartbeat, progress, held_out).execute()
        except BaseException as exc:
            runs.finish(run_id, RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            shutil.rmtree(settings.runs_dir / str(run_id), ignore_errors=True)
        status = RunStatus.SUCCEEDED if result.status == "succeeded" else RunStatus.REJECTED
        runs.finish(run_id, status, result.message, result.version, result.details)
        return result


@dataclass
class Trained:
    """A fine-tuned model at its chosen interpolation, kept while the other weights train."""

    weights: dict  # a copy of the state dict: the next training must not share it
    budget: dict
    alpha: float
    validation: dict[str, dict[str, dict[str, float]]]

    @property
    def figures(self) -> dict[str, dict[str, float]]:
        return self.validation.get(str(self.alpha), {})

    def restore(self, model) -> tuple[Any, dict, float, dict]:  # noqa: ANN001 - SentenceTransformer
        model.load_state_dict(self.weights)
        return model, self.budget, self.alpha, self.validation

    def summary(self) -> dict:
        return {"alpha": self.alpha, "steps_run": self.budget["steps_run"], **self.figures}


class Run:
    """The work of one run, phase by phase, each recorded in the run's row."""

    def __init__(self, state: State, run_id: int, parent: ModelVersion, data: TrainingData, trigger: str,
                 heartbeat: Heartbeat, progress: Progress, held_out: set[str]) -> None:
        self.state, self.settings, self.run_id, self.held_out = state, state.settings, run_id, held_out
        self.parent, self.data, self.trigger, self.heartbeat, self.progress = parent, data, trigger, heartbeat, progress
        self.timings: list[tuple[str, float]] = []  # a phase repeats when several weights train
        self.work = self.settings.runs_dir / str(run_id)

    def phase(self, name: str) -> None:
        self.timings.append((name, time.perf_counter()))
        self.state.runs.phase(self.run_id, name)
        self.progress(name)

    def execute(self) -> RunResult:
        settings, parent, started = self.settings, self.parent, time.perf_counter()
        self.work.mkdir(parents=True, exist_ok=True)

        self.phase("mining")
        parent_checkpoint = version_dir(settings, parent) / parent.manifest["checkpoint"]
        self.parent_encoder = load_encoder(settings, parent)
        doc_ids, corpus = self.state.corpus.all()
        kept = [i for i, text in enumerate(corpus) if split.normalised(text) not in self.held_out]
        doc_ids, corpus = [doc_ids[i] for i in kept], [corpus[i] for i in kept]  # no negatives from the retention set
        vectors = cached_corpus_embeddings(self.parent_encoder, graph_key(parent), doc_ids, corpus,
                                           settings.corpus_cache_dir, self.progress)
        embeddings = ServedEmbeddings(self.parent_encoder, vectors, corpus)
        screened = screen(embeddings, self.data.train, self.data.after_id, settings.retrain)
        if screened.implausible:
            self.data.leave_out(set(screened.left_out), screened.summary(settings.retrain.plausible_rank))
        if screened.left_out:
            log.warning("left out the new feedback of %s: most of its answers are outside the parent's top %d",
                        ", ".join(screened.left_out), settings.retrain.plausible_rank)
        self.data.cap(settings.retrain.max_key_share, settings.training.seed)
        parent_model = load_checkpoint(parent_checkpoint)
        examples, mined = mine(parent_model, embeddings, self.data.train, settings.mining, settings.training.seed)
        validation_set = ValidationSet.build(embeddings, self.data.validation, settings.training.seed,
                                             settings.training.validation_queries)

        trained = {weight: self.fine_tune(weight, parent_checkpoint, parent_model, examples, validation_set)
                   for weight in settings.training.compatibility_weights}
        weight = choose_weight({w: t.figures for w, t in trained.items()}, settings.training.compatibility_keep,
                               settings.gates.metric) if validation_set else min(trained)
        tuned, budget, alpha, validation = trained[weight].restore(self.tuned)
        tuned.max_seq_length = int(parent.manifest["max_seq_length"])  # serve as long texts as the parent
        checkpoint = self.work / "checkpoint"
        tuned.save(str(checkpoint), create_model_card=False)

        self.phase("exporting")
        lineage = {"parent": parent.name, "trigger": self.trigger, "run_id": self.run_id, "data": self.data.summary(),
                   "mining": mined, "budget": budget, "interpolation": {"alpha": alpha, "validation": validation},
                   "compatibility": {"weight": weight, "keep": settings.training.compatibility_keep,
                                     "tried": {str(w): t.summary() for w, t in trained.items()}},
                   "settings": settings.model_dump(mode="json", include={"retrain", "training", "mining", "gates"})}
        version = register_version(settings, self.state.registry, checkpoint, parent=parent.name, training=lineage,
                                   actor=ACTOR, progress=self.progress, assess=self.assess)
        gates = version.metrics["gates"]
        marks = [*self.timings, ("end", time.perf_counter())]
        seconds: dict[str, float] = {}
        for (name, start), (_, end) in zip(marks, marks[1:]):
            seconds[name] = round(seconds.get(name, 0.0) + end - start, 1)
        details = {"data": self.data.summary(), "mining": mined, "budget": budget, "alpha": alpha,
                   "compatibility_weight": weight, "gates": gates,
                   "seconds": {**seconds, "total": round(time.perf_counter() - started, 1)},
                   "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        result = RunResult("rejected", "; ".join(gates["reasons"]), self.run_id, version.name, parent.name,
                           self.data.summary(), details)
        if gates["passed"]:
            self.state.promotion.mark_candidate(version.name, actor=ACTOR)
            metric = gates["metric"]
            result.status = "succeeded"
            result.message = (f"{version.name} is a candidate: probe {metric} {gates['candidate_probe'][metric]:.4f} "
                              f"vs {gates['production_probe'][metric]:.4f} (gain {gates['gain']['mean']:+.4f}, "
                              f"lower bound {gates['gain']['ci_low']:+.4f})")
        return result

    def fine_tune(self, weight: float, parent_checkpoint: Path, parent_model, examples: list[Example],  # noqa: ANN001
                  validation_set: ValidationSet | None) -> "Trained":
        """One training with one compatibility weight, interpolated toward the parent on validation."""
        metric = self.settings.gates.metric
        self.phase("training")
        tuned, budget = train(parent_checkpoint, examples, self.settings.training, self.work / f"weight-{weight:g}",
                              validation_set, metric, self.progress, compatibility_weight=weight)
        self.phase("interpolating")
        alpha, validation = choose_interpolation(parent_model.state_dict(), tuned, validation_set,
                                                 self.settings.training, metric, self.progress)
        self.tuned = tuned  # the last one trained: the chosen weights are loaded into it
        return Trained({k: v.detach().clone() for k, v in tuned.state_dict().items()}, budget, alpha, validation)

    def assess(self, folder: Path, manifest: dict) -> Assessment:
        """The gates, on the exported folder before it is registered."""
        self.phase("gating")
        settings, registry = self.settings, self.state.registry
        candidate = ServedGraph(sha256_file(folder / INT8_GRAPH)[:16],  # as graph_key() names it once registered
                                OnnxEncoder(folder, "int8", manifest=manifest, use_gpu=False))
        production = registry.get(registry.alias(PRODUCTION))
        gates = Gates(settings.gates, settings.corpus_cache_dir, self.progress).run(
            candidate, ServedGraph(graph_key(production), load_encoder(settings, production)),
            ServedGraph(graph_key(self.parent), self.parent_encoder), self.state.probes.load(),
            registry.alias_moved_at(PRODUCTION), manifest.get("parity"))
        gates.figures["against"] = production.name
        if self.heartbeat.lost:
            raise RetrainError("lost the retraining lease; not registering")
        self.phase("registering")
        if gates.adapter is not None:  # registered with the version's files, so checked like them when loaded
            np.save(folder / adapter_file(production.name), gates.adapter, allow_pickle=False)
        state = VersionState.CANDIDATE if gates.passed else VersionState.REJECTED
        return Assessment({"gates": gates.as_dict()}, state, gates.reasons)
