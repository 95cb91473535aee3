"""The demo's report: headline numbers, five charts (PNG) and one self-contained HTML page.

Everything comes from what the run recorded: the traffic the demo sent, the index client's readings,
the daemon's check history and triggers, the retraining runs and the registry's audit log.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from embedloop.core.models.registry import PRODUCTION, utc_epoch
from embedloop.core.settings import Settings
from embedloop.core.state import State


def collect(state: State, settings: Settings, traffic, events, shift_at: float | None,  # noqa: ANN001
            index=None) -> dict:  # noqa: ANN001 - a StoredIndex
    """``settings``: as the demo last configured them (the policy and floor change during a run)."""
    registry, store = state.registry, state.checks
    audit = [{"at": utc_epoch(e.at), "actor": e.actor, "action": e.action, "alias": e.alias, "from": e.from_version,
              "to": e.to_version, "reason": e.reason} for e in reversed(registry.history())]
    drift = [{"at": r.at, "version": r.version, "declared": bool(r.declared), "drifted": bool(r.window_drifted),
              "share": r.figures.get("share_drifted", 0.0), "max_ks": r.figures.get("max_ks", 0.0)}
             for r in reversed(store.drift_runs(limit=100_000))]
    probes = [{"at": r.at, "version": r.version, "mrr@10": r.metrics["mrr@10"],
               "recall@10": r.metrics["recall@10"], "queries": r.metrics.get("queries"), "alarm": r.alarm}
              for r in reversed(store.probe_runs(limit=100_000))]
    triggers = [{"at": t.at, "reason": t.reason, "version": t.version, "status": t.status, "note": t.note}
                for t in reversed(state.triggers.recent(limit=10_000))]
    runs = [{"id": r.id, "start": r.started_at, "end": r.finished_at, "status": r.status, "phase": r.phase,
             "trigger": r.trigger, "parent": r.parent, "version": r.version, "message": r.message,
             "seconds": r.details.get("seconds", {})} for r in reversed(state.runs.runs())]
    states = registry.states()
    versions = [{"version": v.name, "parent": v.parent, "state": states[v.name].state if v.name in states else "",
                 "reasons": states[v.name].reasons if v.name in states else [], "metrics": v.metrics,
                 "training": {k: v.training.get(k) for k in ("data", "interpolation", "trigger")} if v.training else {}}
                for v in registry.versions()]
    sent = [{"at": s.at, "latency_s": s.latency_s, "status": s.status, "version": s.version, "phase": s.phase}
            for s in (traffic.sent if traffic else [])]
    readings = [{"at": r.at, "queries_by": r.queries_by, "index": r.index, "recall@10": r.recall, "mrr@10": r.mrr}
                for r in (index.readings if index else [])]
    return {"audit": audit, "drift": drift, "probes": probes, "triggers": triggers, "runs": runs, "versions": versions,
            "requests": sent, "index": readings,
            "events": events.marks, "shift_at": shift_at, "production": registry.alias(PRODUCTION),
            "feedback": {"sent": traffic.feedback_sent if traffic else 0,
                         "failed": traffic.feedback_failed if traffic else 0},
            "settings": {"probe_metric": settings.probes.metric, "floor": settings.probes.floor,
                         "min_ks": settings.drift.min_ks, "window": settings.drift.window_size}}


def headline(data: dict) -> dict:
    shift = data["shift_at"]
    promotions = [a for a in data["audit"] if a["action"] == "approve" and shift and a["at"] > shift]
    first = promotions[0] if promotions else None
    before = [p for p in data["probes"] if shift and p["at"] < shift]
    dip = [p for p in data["probes"] if shift and p["at"] > shift and (first is None or p["at"] < first["at"])]
    after = [p for p in data["probes"] if first and p["version"] == first["to"] and p["at"] > first["at"]]
    declared = [d for d in data["drift"] if shift and d["at"] > shift and d["declared"]]
    triggers = [t for t in data["triggers"] if shift and t["at"] > shift]
    failed = sum(1 for r in data["requests"] if r["status"] != 200) + data["feedback"]["failed"]

    def figure(rows, pick):
        return {"mrr@10": pick(rows)["mrr@10"], "recall@10": pick(rows)["recall@10"],
                "version": pick(rows)["version"]} if rows else None

    return {
        **index_headline(data["index"], first),
        "probe_before_shift": figure(before, lambda r: r[-1]),
        "probe_at_dip": figure(dip, lambda r: min(r, key=lambda p: p["mrr@10"])),
        "probe_after_recovery": figure(after, lambda r: r[0]),
        "seconds_shift_to_drift_declared": round(declared[0]["at"] - shift, 1) if declared else None,
        "seconds_shift_to_first_trigger": round(triggers[0]["at"] - shift, 1) if triggers else None,
        "seconds_shift_to_promotion": round(first["at"] - shift, 1) if first else None,
        "promoted": first["to"] if first else None,
        "requests": len(data["requests"]), "failed_requests": failed, "feedback_posted": data["feedback"]["sent"],
    }


def index_headline(readings: list[dict], promotion: dict | None) -> dict:
    """The index client's recall@10 / MRR@10 on its own index: last before the first promotion, the
    worst between it and the reindex to the promoted version, the first after that reindex."""
    if promotion is None:
        return {"index_before_promotion": None, "index_after_promotion": None, "index_after_reindex": None}
    rebuilt = f"__{promotion['to']}"
    before = [r for r in readings if r["at"] < promotion["at"]]
    held = [r for r in readings if r["at"] > promotion["at"] and not (r["index"] or "").endswith(rebuilt)]
    after = [r for r in readings if (r["index"] or "").endswith(rebuilt) and r["queries_by"] == promotion["to"]]

    def figure(row: dict | None) -> dict | None:
        return {k: row[k] for k in ("recall@10", "mrr@10", "queries_by", "index")} if row else None

    return {"index_before_promotion": figure(before[-1] if before else None),
            "index_after_promotion": figure(min(held, key=lambda r: r["mrr@10"]) if held else None),
            "index_after_reindex": figure(after[0] if after else None)}


def charts(data: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min([r["at"] for r in data["requests"]] or [data["shift_at"] or 0])

    def rel(t: float) -> float:
        return t - t0

    def mark_shift(ax) -> None:  # noqa: ANN001
        if data["shift_at"]:
            ax.axvline(rel(data["shift_at"]), color="black", linestyle=":", label="traffic shift")

    paths = []
    fig, ax = plt.subplots(figsize=(9, 3.2))
    d = data["drift"]
    if d:
        ax.plot([rel(r["at"]) for r in d], [r["share"] for r in d], marker=".", label="share of drifted dimensions")
        ax.plot([rel(r["at"]) for r in d], [r["max_ks"] for r in d], marker=".", label="largest KS statistic")
        ax.axhline(data["settings"]["min_ks"], color="grey", linestyle="--", label="KS floor (min_ks)")
        declared = [r for r in d if r["declared"]]
        ax.scatter([rel(r["at"]) for r in declared], [r["share"] for r in declared], color="red", zorder=3,
                   label="drift declared")
    mark_shift(ax)
    ax.set(title="Drift checks", xlabel="seconds", ylim=(0, 1.05))
    ax.legend(fontsize=7, loc="upper left")
    paths.append(save(fig, out / "drift.png"))

    fig, ax = plt.subplots(figsize=(9, 3.2))
    for version in dict.fromkeys(p["version"] for p in data["probes"]):
        rows = [p for p in data["probes"] if p["version"] == version]
        ax.plot([rel(p["at"]) for p in rows], [p["mrr@10"] for p in rows], marker="o", label=f"{version} MRR@10")
        ax.plot([rel(p["at"]) for p in rows], [p["recall@10"] for p in rows], linestyle="--", alpha=0.6,
                label=f"{version} recall@10")
    ax.axhline(data["settings"]["floor"], color="red", linestyle="--",
               label=f"floor ({data['settings']['probe_metric']})")
    mark_shift(ax)
    ax.set(title="Probe set, as served (int8)", xlabel="seconds")
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    paths.append(save(fig, out / "probes.png"))

    fig, ax = plt.subplots(figsize=(9, 3.2))
    req = data["requests"]
    if req:
        times = np.array([rel(r["at"]) for r in req])
        lat = np.array([r["latency_s"] * 1000 for r in req])
        edges = np.arange(0, times.max() + 5, 5)
        centres, p50, p99, rate = [], [], [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            inside = (times >= lo) & (times < hi)
            if inside.any():
                centres.append((lo + hi) / 2)
                p50.append(np.percentile(lat[inside], 50))
                p99.append(np.percentile(lat[inside], 99))
                rate.append(inside.sum() / (hi - lo))
        ax.plot(centres, p50, label="p50 latency (ms)")
        ax.plot(centres, p99, label="p99 latency (ms)")
        ax.set_ylabel("ms")
        twin = ax.twinx()
        twin.plot(centres, rate, color="grey", alpha=0.6, label="requests / s")
        twin.set_ylabel("requests / s")
        twin.legend(fontsize=7, loc="upper right")
    mark_shift(ax)
    ax.set(title="Requests (5 s buckets)", xlabel="seconds")
    ax.legend(fontsize=7, loc="upper left")
    paths.append(save(fig, out / "latency.png"))

    fig, ax = plt.subplots(figsize=(9, 3.2))
    moves = [a for a in data["audit"] if a["alias"] == PRODUCTION]
    end = max([r["at"] for r in req] + [t["at"] for t in data["triggers"]] + [a["at"] for a in data["audit"]]
              + [r["end"] or r["start"] for r in data["runs"]] + [t0])
    if moves:
        xs = [max(0.0, rel(a["at"])) for a in moves] + [rel(end)]
        ys = [int(a["to"].lstrip("v")) for a in moves]
        ax.step(xs, ys + ys[-1:], where="post", label="production version")
        for a in moves[1:]:
            colour = {"approve": "green", "rollback": "orange"}.get(a["action"], "blue")
            ax.scatter([rel(a["at"])], [int(a["to"].lstrip("v"))], color=colour, zorder=3)
            ax.annotate(f"{a['action']} {a['to']}", (rel(a["at"]), int(a["to"].lstrip("v"))), fontsize=7,
                        textcoords="offset points", xytext=(3, 5))
    for reason, colour, marker in (("drift", "red", "x"), ("probe_recall", "purple", "d")):
        rows = [t for t in data["triggers"] if t["reason"] == reason]
        ax.scatter([rel(t["at"]) for t in rows], [0.6] * len(rows), color=colour, marker=marker, s=14,
                   alpha=0.6, label=f"{reason} trigger")
    for r in data["runs"]:
        ax.axvspan(rel(r["start"]), rel(r["end"] or end), color="gold", alpha=0.3)
    mark_shift(ax)
    ax.set(title="Production version, triggers and retraining runs (gold)", xlabel="seconds", ylabel="version")
    ax.set_ylim(0.4, max([int(v["version"].lstrip("v")) for v in data["versions"]] + [1]) + 0.6)
    ax.legend(fontsize=7, loc="upper left")
    paths.append(save(fig, out / "timeline.png"))

    fig, ax = plt.subplots(figsize=(9, 3.2))
    readings = data["index"]
    for (queries_by, index) in dict.fromkeys((r["queries_by"], r["index"]) for r in readings):
        rows = [r for r in readings if (r["queries_by"], r["index"]) == (queries_by, index)]
        stored = (index or "").rsplit("__", 1)[-1]
        ax.plot([rel(r["at"]) for r in rows], [r["recall@10"] for r in rows], marker="o", linestyle="",
                label=f"recall@10: queries {queries_by}, vectors {stored}")
        ax.plot([rel(r["at"]) for r in rows], [r["mrr@10"] for r in rows], marker="x", linestyle="",
                label=f"MRR@10: queries {queries_by}, vectors {stored}")
    for at, what in data["events"]:
        if "promoted" in what or "reindex done" in what:
            ax.axvline(rel(at), color="grey", linestyle="--")
            ax.annotate(what, (rel(at), 0.02), fontsize=6, rotation=90, textcoords="offset points", xytext=(2, 0))
    mark_shift(ax)
    ax.set(title="The index client: its questions against its own stored vectors (channel embedloop@index-main)",
           xlabel="seconds", ylim=(0, 1.05))
    ax.legend(fontsize=6, loc="lower right")
    paths.append(save(fig, out / "stored_index.png"))
    return paths


def save(fig, path: Path) -> Path:  # noqa: ANN001
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def gate_rows(data: dict) -> str:
    rows = []
    for v in data["versions"]:
        gates = v["metrics"].get("gates", {})
        metric, gain = gates.get("metric", ""), gates.get("gain")
        cand, prod = gates.get("candidate_probe", {}), gates.get("production_probe", {})
        statuses = {g["name"]: g["status"] for g in gates.get("gates", [])}
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in [
            v["version"], v["parent"] or "", v["state"],
            f"{v['metrics'].get('parity', {}).get('mean_cosine', 0):.4f}",
            f"{metric} {cand[metric]:.4f}" if cand else "", f"{prod[metric]:.4f}" if prod else "",
            f"{gain['mean']:+.4f} (≥ {gain['ci_low']:+.4f}, {gain['queries']} queries)" if gain else "",
            ", ".join(f"{name} {status}" for name, status in statuses.items()),
            (v["training"].get("data") or {}).get("train_pairs", "") if v["training"] else "",
            (v["training"].get("interpolation") or {}).get("alpha", "") if v["training"] else "",
            "; ".join(v["reasons"])]) + "</tr>")
    return "\n".join(rows)


def write_report(state: State, settings: Settings, scenario, traffic, events, shift_at,  # noqa: ANN001
                 out: Path, index=None) -> dict:  # noqa: ANN001 - a StoredIndex
    data = collect(state, settings, traffic, events, shift_at, index)
    head = headline(data)
    summary = {"headline": head, "before": scenario.before if scenario else [],
               "after": scenario.after if scenario else [], "later": scenario.later if scenario else [],
               "pilot_mrr@10": scenario.pilot if scenario else {},
               "floor": data["settings"]["floor"],
               "audit": data["audit"], "runs": data["runs"], "events": data["events"], "index": data["index"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    images = charts(data, out)
    t0 = min([r["at"] for r in data["requests"]] or [0])
    embedded = "\n".join(f'<h2>{p.stem}</h2><img src="data:image/png;base64,'
                         f'{base64.b64encode(p.read_bytes()).decode()}">' for p in images)
    heads = "".join(f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{html.escape(json.dumps(v))}</td></tr>"
                    for k, v in head.items())
    timeline = "".join(f"<tr><td>{a['at'] - t0:.0f} s</td><td>{html.escape(a['actor'])}</td><td>{a['action']}</td>"
                       f"<td>{a['from'] or ''} → {a['to'] or ''}</td><td>{html.escape(a['reason'])}</td></tr>"
                       for a in data["audit"])
    pilot = json.dumps({k: round(v, 3) for k, v in summary["pilot_mrr@10"].items()})
    marks = "".join(f"<li>{at - t0:.0f} s: {html.escape(what)}</li>" for at, what in data["events"])
    page = f"""<!doctype html><meta charset="utf-8"><title>embedloop demo</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}td,th{{border:1px solid #ccc;padding:3px 6px;
font-size:13px;text-align:left}}table{{border-collapse:collapse;margin-bottom:1em}}img{{max-width:100%}}</style>
<h1>embedloop: the loop on real data</h1>
<p>Traffic before the first shift: {html.escape(', '.join(summary['before']))};
after it: {html.escape(', '.join(summary['after']))}; after the second shift:
{html.escape(', '.join(summary['later']))}.
Base-model MRR@10 per group (the measurement that chose the split): {html.escape(pilot)};
probe floor ({data['settings']['probe_metric']}) halfway between the first two: {data['settings']['floor']:.4f}.</p>
<h2>Headline</h2><table>{heads}</table>
<h2>What happened</h2><ul>{marks}</ul>
{embedded}
<h2>Gate figures per version</h2><table><tr><th>version</th><th>parent</th><th>state</th><th>int8 parity</th>
<th>candidate probe</th><th>production probe</th><th>gain (95 % lower bound)</th><th>gates</th><th>train pairs</th>
<th>interpolation</th><th>reasons</th></tr>{gate_rows(data)}</table>
<h2>Audit log</h2><table><tr><th>when</th><th>who</th><th>action</th><th>from → to</th><th>why</th></tr>
{timeline}</table>
"""
    (out / "report.html").write_text(page)
    return {"report": str(out / "report.html"), **summary}
