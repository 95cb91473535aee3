"""Could a smaller step toward the fine-tuned weights keep the groups a batch does not cover?

    .venv/bin/python benchmarks/interpolation.py [--work DIR] [--version v2] [--alphas 0.1 0.25 0.5 0.75]

Reads what ``benchmarks/gates.py`` left in ``--work``: its first candidate (trained on two MedQuAD
sources), its parent v1, and the probe set (every source's test questions). For each share ``a`` of
the fine-tuned weights, ``parent + a (tuned − parent)`` — the interpolation a run chooses on its
validation split — is exported and quantized as a run would, and scored as served on the probes:
the gain on the two trained sources, every group's change, and the probe gates' verdict against the
parent. It answers whether the gain/group trade-off has a point that meets both small-data targets
(gain >= +0.03 on the two sources, no group down by more than 0.01), and how the run's validation
split (drawn from the two sources only) ranked the same shares. Results in
``benchmarks/results/interpolation.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from common import REPO, save
from gates import change_by_group, judged, scores_of

from embedloop.core.evaluation.paired import compare
from embedloop.core.evaluation.probes import score_probes
from embedloop.core.models.artifacts import sha256_file
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.models.export import INT8_GRAPH, build_version_folder
from embedloop.core.models.versions import version_dir
from embedloop.core.settings import load_settings
from embedloop.core.state import State
from embedloop.retrain.finetune import load_checkpoint
from embedloop.retrain.gates import Gates, GateStatus
from embedloop.retrain.validation import mix


def mixed_scores(state: State, model, weights: dict, alpha: float, work: Path):  # noqa: ANN001, ANN201
    """Probe scores of ``model`` with ``parent + alpha (tuned - parent)`` loaded (``weights``: both state
    dicts), exported and quantized as a run would."""
    model.load_state_dict(mix(weights["parent"], weights["tuned"], alpha))
    checkpoint, folder = work / f"checkpoint-{alpha:g}", work / f"version-{alpha:g}"
    shutil.rmtree(checkpoint, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    model.save(str(checkpoint), create_model_card=False)
    folder.mkdir(parents=True)
    manifest = build_version_folder(checkpoint, folder, state.settings.export)
    encoder = OnnxEncoder(folder, "int8", manifest=manifest, use_gpu=False)
    return score_probes(encoder, sha256_file(folder / INT8_GRAPH)[:16], state.probes.load(),
                        state.settings.corpus_cache_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".work" / "gates")
    parser.add_argument("--version", default="v2", help="the candidate whose interpolation is swept")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.1, 0.25, 0.5, 0.75])
    args = parser.parse_args()
    state = State(load_settings(args.work / "home"))
    setup = json.loads((args.work / "setup.json").read_text())
    tuned = state.registry.get(args.version)
    parent = state.registry.get(tuned.training["parent"])
    gates = Gates(state.settings.gates, state.settings.corpus_cache_dir)
    metric = gates.settings.metric
    base = scores_of(state, parent.name)
    groups = np.array(base.probes.groups)
    trained = np.flatnonzero(np.isin(groups, setup["sources"]))
    validation = tuned.training["interpolation"]["validation"]
    model, parent_model = (load_checkpoint(version_dir(state.settings, v) / v.manifest["checkpoint"])
                           for v in (tuned, parent))
    weights = {"tuned": {k: v.detach().clone() for k, v in model.state_dict().items()},
               "parent": parent_model.state_dict()}

    rows = []
    for alpha in sorted({*args.alphas, 1.0}):
        scores = scores_of(state, tuned.name) if alpha == 1.0 else mixed_scores(
            state, model, weights, alpha, args.work / "interpolation")
        gain = compare(scores.per_query[metric][trained], base.per_query[metric][trained], 0.0)
        changes = change_by_group(scores, base, metric)
        report = judged(gates, scores, base)
        row = {"alpha": alpha, "gain_on_the_two_sources": round(gain.mean, 4),
               "gain_ci": [round(gain.ci_low, 4), round(gain.ci_high, 4)],
               "probe_gain": round(report.figures["gain"]["mean"], 4), "change_by_group": changes,
               "largest_group_drop": min(changes.values()), "gates_passed": report.passed,
               "failed": [g.name for g in report.gates if g.status is GateStatus.FAILED],
               "validation": (validation.get(str(alpha)) or {}).get("own", {}).get(metric),
               "meets_both_targets": gain.mean >= 0.03 and min(changes.values()) >= -0.01}
        rows.append(row)
        print(json.dumps(row), flush=True)
    save("interpolation", {"version": tuned.name, "parent": parent.name, "sources": setup["sources"],
                           "chosen_alpha": tuned.training["interpolation"]["alpha"], "rows": rows,
                           "any_share_meets_both_targets": any(r["meets_both_targets"] for r in rows)})


if __name__ == "__main__":
    main()
