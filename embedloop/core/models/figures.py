"""Reading the figures a version was registered with, the same way wherever they are shown (the
command line, the audit log, the review page)."""

from __future__ import annotations


def gate_summary(gates: dict | None) -> str:
    """'mrr@10 0.9412 vs 0.8801, +0.0611 (≥ +0.0520)': the candidate's probe figure against
    production's, the mean gain and its lower confidence bound."""
    if not gates or not gates.get("candidate_probe"):
        return ""
    metric = gates["metric"]
    text = f"{metric} {gates['candidate_probe'][metric]:.4f}"
    if gates.get("production_probe"):
        text += f" vs {gates['production_probe'][metric]:.4f}"
    if gates.get("gain"):
        text += f", {gates['gain']['mean']:+.4f} (≥ {gates['gain']['ci_low']:+.4f})"
    return text


def compatibility_summary(gates: dict | None) -> str:
    """'0.8210 vs v1's 0.7190: compatible': the version's queries against the stored vectors of the
    version it was measured against, next to that version's own figure (and its query adapter's, if
    one is served: '…; adapter 0.8400')."""
    figures = (gates or {}).get("compatibility")
    if not figures:
        return ""
    metric = figures["metric"]
    verdict = "compatible" if figures["compatible"] else "reindex needed"
    against = gates.get("against", "its parent")
    summary = f"{figures['cross'][metric]:.4f} vs {against}'s {figures['older'][metric]:.4f}: {verdict}"
    adapter = figures.get("adapter") or {}
    if adapter.get("served"):
        summary += f"; adapter {adapter['cross'][metric]:.4f}"
    return summary
