"""The drift check as the daemon and the command line run it: read the newest window of logged
queries of the production version, compare it with that version's reference, store the run,
export the figures. Declared drift asks for retraining."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from embedloop.core.models.registry import PRODUCTION
from embedloop.core.models.versions import load_encoder
from embedloop.core.state import State
from embedloop.monitoring import metrics
from embedloop.monitoring.drift import Correction, Detector, DriftConfig, detect
from embedloop.monitoring.report import CheckReport, CheckStatus

NAME = "drift"


def uniform_sample(n_items: int, k: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``min(k, n_items)`` items drawn uniformly without replacement."""
    return np.sort(np.random.default_rng(seed).choice(n_items, size=min(k, n_items), replace=False))


def window_by_key(rows: list) -> dict[str, float]:
    """Which API keys sent the window's queries (shares), so a drift can be traced to a client."""
    counts = Counter(r.key or "(no key)" for r in rows)
    return {key: round(n / len(rows), 4) for key, n in counts.most_common()}


class DriftCheck:
    def __init__(self, state: State) -> None:
        self.state = state
        d = state.settings.drift
        self.settings = d
        self.config = DriftConfig(alpha=d.alpha, correction=Correction(d.correction), min_ks=d.min_ks,
                                  min_share=d.min_share, pca_components=d.pca_components or None,
                                  detector=Detector(d.detector), mmd_alpha=d.mmd_alpha,
                                  mmd_components=d.mmd_components, permutations=d.permutations)

    def build_reference(self, version: str, since: float | None, probes_allowed: bool):
        """From the version's logged traffic (since ``since``) when there is enough, else from the
        probe queries; LookupError when neither can be used yet."""
        d, log = self.settings, self.state.querylog
        ids = log.sample_ids(version, since)
        if len(ids) >= d.window_size:  # read only the chosen rows: the log may hold a million
            rows = log.sample_rows(ids=[ids[i] for i in uniform_sample(len(ids), d.reference_size)])
            emb = np.stack([r.embedding for r in rows])
            return self.state.checks.save_reference(version, emb, np.array([r.n_tokens for r in rows]), "traffic")
        probes = self.state.probes.load() if probes_allowed else None
        if probes is None or not probes.query_texts:
            raise LookupError(f"{len(ids)} of {d.window_size} queries logged to build the drift reference from")
        encoder = load_encoder(self.state.settings, self.state.registry.get(version))
        texts = [probes.query_texts[i] for i in uniform_sample(len(probes.query_texts), d.reference_size)]
        lengths = np.array([t.n_tokens for t in encoder.tokenize(texts)])
        return self.state.checks.save_reference(version, encoder.encode(texts), lengths, "probes")

    def __call__(self) -> CheckReport:
        report = self._run()
        metrics.CHECK_LAST_RUN.labels(NAME).set(time.time())
        return report

    def _run(self) -> CheckReport:
        d, registry, store, log = self.settings, self.state.registry, self.state.checks, self.state.querylog
        version = registry.alias(PRODUCTION)
        if version is None:
            return CheckReport(NAME, None, CheckStatus.SKIPPED, message="nothing in production")
        reference = store.reference(version)
        promoted = registry.alias_moved_at(PRODUCTION)
        if reference is None or (promoted is not None and reference.built_at < promoted):
            # A new production version (or one rolled back to): embeddings of another version do not
            # compare, and the traffic it was promoted for is the new normal. Probe queries stand in
            # only on a fresh installation, before any traffic.
            try:
                reference = self.build_reference(version, since=promoted, probes_allowed=log.count_samples() == 0)
            except LookupError as exc:
                return CheckReport(NAME, version, CheckStatus.WAITING, message=str(exc))
        last = store.drift_runs(version, limit=1)
        since = max(reference.built_at, last[0].window_end if last else 0.0)
        rows = log.sample_rows(version=version, since=since, newest=d.window_size)
        if len(rows) < d.window_size:
            return CheckReport(NAME, version, CheckStatus.WAITING,
                               message=f"{len(rows)} of {d.window_size} new queries logged since the last window")
        result = detect(reference.embeddings, np.stack([r.embedding for r in rows]), self.config,
                        reference.lengths, np.array([r.n_tokens for r in rows]))
        streak = 0
        if result.drifted:  # this window, plus the drifted windows right before it
            streak = 1
            for run in store.drift_runs(version, limit=d.consecutive - 1):
                if not run.window_drifted:
                    break
                streak += 1
        declared = result.drifted and streak >= d.consecutive
        figures = {**result.as_dict(), "streak": streak, "reference_origin": reference.origin,
                   "window_by_key": window_by_key(rows)}
        store.add_drift_run(version, max(r.ts for r in rows), result.drifted, declared, figures)
        metrics.DRIFT_SHARE.set(result.share_drifted)
        metrics.DRIFT_MIN_P.set(result.min_p_adjusted)
        metrics.DRIFT_MAX_KS.set(result.max_ks)
        metrics.DRIFT_WINDOW.set(result.window_size)
        metrics.DRIFT_REFERENCE.set(result.reference_size)
        metrics.DRIFT_DECLARED.set(1 if declared else 0)
        if result.mmd_p_value is not None:
            metrics.DRIFT_MMD_P.set(result.mmd_p_value)
        status = CheckStatus.DECLARED if declared else CheckStatus.DRIFTED if result.drifted else CheckStatus.OK
        return CheckReport(NAME, version, status, figures, trigger="drift" if declared else None,
                           message=f"{result.summary()}; {streak} drifted window(s) in a row")
