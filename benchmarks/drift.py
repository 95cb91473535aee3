"""Drift detection on MedQuAD query streams built from the `source` field.

    .venv/bin/python benchmarks/drift.py [--windows 100] [--sizes 100,200,500] [--components 16,32,64]

Reference: queries from the reference sources, embedded by the served int8 graph. Streams:
(a) stationary — windows from the same sources (disjoint from the reference sample);
(b) shift — windows from the other sources; (c) subtle — 20 % of a window from the other sources.
For window sizes 100/200/500 it reports the false-alarm rate (a), detection rates (b, c) and the
time per check: for the KS detector with FDR vs Bonferroni, with and without PCA, with and without
the effect-size floor; for the MMD detector at several numbers of components and levels; and for
the default (either detector).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import DATASETS, base_home, save

from embedloop.core.labels.beir import read_jsonl
from embedloop.core.models.versions import load_encoder
from embedloop.monitoring.drift import Correction, Detector, DriftConfig, detect, mmd_test

REFERENCE_SOURCES = ("GARD", "GHR", "NINDS", "NIDDK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=100, help="windows per stream and size (>= 50)")
    parser.add_argument("--reference-size", type=int, default=1000)
    parser.add_argument("--sizes", default="100,200,500", help="window sizes (200 is needed for the targets)")
    parser.add_argument("--components", default="16,32,64", help="MMD principal components to compare")
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()

    settings, registry = base_home(args.home or Path(tempfile.mkdtemp(prefix="embedloop-drift-")))
    encoder = load_encoder(settings, registry.get(registry.alias("production")))
    queries = read_jsonl(DATASETS / "medquad" / "queries.jsonl")
    texts = [q["text"] for q in queries]
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    lengths = np.array([t.n_tokens for t in encoder.tokenize(texts)])
    print(f"embedded {len(texts)} queries in {time.perf_counter() - started:.1f} s")

    in_ref = np.array([q["source"] in REFERENCE_SOURCES for q in queries])
    rng = np.random.default_rng(0)
    same = rng.permutation(np.flatnonzero(in_ref))
    other = np.flatnonzero(~in_ref)
    reference_idx, same_pool = same[: args.reference_size], same[args.reference_size :]
    reference, reference_lengths = vectors[reference_idx], lengths[reference_idx]
    print(f"reference: {len(reference_idx)} queries from {', '.join(REFERENCE_SOURCES)}; "
          f"stationary pool {len(same_pool)}, other-source pool {len(other)}")

    def window(kind: str, size: int) -> np.ndarray:
        if kind == "stationary":
            return rng.choice(same_pool, size, replace=False)
        if kind == "shift":
            return rng.choice(other, size, replace=False)
        n_other = int(round(0.2 * size))
        return np.concatenate([rng.choice(same_pool, size - n_other, replace=False),
                               rng.choice(other, n_other, replace=False)])

    # verdict "any": a window is drifted when any dimension is (the classic multiple-testing
    # verdict); "5%": when at least 5 % of the dimensions are.
    # KS set-ups (the whole grid of corrections, PCA, floor and verdicts is in earlier results: the
    # floor and "any dimension" won); the default combines KS with MMD.
    configs = {
        f"ks:{corr.value}+floor/any": DriftConfig(correction=corr, detector=Detector.KS)
        for corr in Correction
    }
    default = DriftConfig()
    configs["default (ks or mmd)"] = default
    table: dict[str, dict] = {}

    def record(name: str, size: int, verdicts: dict[str, list[bool]], seconds: list[float]) -> None:
        row = {"false_alarm_rate": float(np.mean(verdicts["stationary"])),
               "detection_shift": float(np.mean(verdicts["shift"])),
               "detection_subtle": float(np.mean(verdicts["subtle"])),
               "ms_per_check": 1000 * statistics.median(seconds)}
        table.setdefault(name, {})[str(size)] = row
        print(f"{name:34s} n={size:3d}  false alarms {row['false_alarm_rate']:5.1%}  "
              f"shift {row['detection_shift']:5.1%}  subtle {row['detection_subtle']:5.1%}  "
              f"{row['ms_per_check']:.1f} ms", flush=True)

    for size in [int(x) for x in args.sizes.split(",")]:
        windows = {kind: [window(kind, size) for _ in range(args.windows)]
                   for kind in ("stationary", "shift", "subtle")}
        for name, config in configs.items():
            verdicts, seconds = {}, []
            for kind, idx_list in windows.items():
                verdicts[kind] = []
                for idx in idx_list:
                    t0 = time.perf_counter()
                    verdicts[kind].append(detect(reference, vectors[idx], config, reference_lengths,
                                                 lengths[idx]).drifted)
                    seconds.append(time.perf_counter() - t0)
            record(name, size, verdicts, seconds)
        for components in [int(x) for x in args.components.split(",")]:  # p-values once, judged at several levels
            p_values, seconds = {}, []
            for kind, idx_list in windows.items():
                p_values[kind] = []
                for i, idx in enumerate(idx_list):
                    t0 = time.perf_counter()
                    p_values[kind].append(mmd_test(reference, vectors[idx], components, seed=i)[1])
                    seconds.append(time.perf_counter() - t0)
            for level in (0.01, 0.02, 0.05):
                record(f"mmd:{components} components, p < {level}", size,
                       {kind: [p < level for p in ps] for kind, ps in p_values.items()}, seconds)
    d200 = table["default (ks or mmd)"]["200"]
    targets = {"false_alarm_rate_200<=0.05": d200["false_alarm_rate"] <= 0.05,
               "detection_shift_200>=0.95": d200["detection_shift"] >= 0.95,
               "detection_subtle_200>=0.80": d200["detection_subtle"] >= 0.80}
    print(f"default at 200: {d200} -> {targets}")
    save("drift", {"reference_sources": REFERENCE_SOURCES, "reference_size": len(reference_idx),
                   "windows_per_stream": args.windows, "sizes": args.sizes, "default": {
                       "detector": default.detector.value, "ks_alpha": default.alpha, "min_ks": default.min_ks,
                       "mmd_alpha": default.mmd_alpha, "mmd_components": default.mmd_components,
                       "permutations": default.permutations},
                   "results": table, "targets_met": targets})


if __name__ == "__main__":
    main()
