"""The review page's charts: drawn by matplotlib on the server as SVG and embedded in the page as
data URIs, so they need no JavaScript, no second request and no second login. Figures are built
with the object API (no pyplot state), so pages may draw in several threads."""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import matplotlib
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

PRODUCTION_COLOUR, CANDIDATE_COLOUR, ALARM_COLOUR = "#8c8c8c", "#2f6fbf", "#c0392b"


def data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9}):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def groups_chart(groups: list[dict], metric: str, production: str, candidate: str) -> str | None:
    """Per probe group: production's and the candidate's ``metric`` side by side."""
    rows = [g for g in groups if g["production"] is not None and g["candidate"] is not None]
    if not rows:
        return None
    figure = Figure(figsize=(7, 0.45 * len(rows) + 1.2), layout="constrained")
    axes = figure.add_subplot()
    positions = range(len(rows))
    axes.barh([p + 0.2 for p in positions], [g["production"] for g in rows], height=0.4, color=PRODUCTION_COLOUR,
              label=f"{production} (production)")
    axes.barh([p - 0.2 for p in positions], [g["candidate"] for g in rows], height=0.4, color=CANDIDATE_COLOUR,
              label=candidate)
    axes.set_yticks(list(positions), [f"{g['group']} ({g['queries']})" for g in rows])
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel(f"probe {metric}")
    figure.legend(loc="outside upper left", ncols=2, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return data_uri(figure)


def history_chart(probe_runs: list, drift_runs: list, metric: str) -> str | None:
    """Probe ``metric`` per check over time, one line per version, above the share of embedding
    dimensions the drift check found drifted (declared drift in red)."""
    if not probe_runs and not drift_runs:
        return None
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    probe_axes, drift_axes = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    by_version: dict[str, list] = defaultdict(list)
    for run in sorted(probe_runs, key=lambda r: r.at):
        by_version[run.version].append((when(run.at), run.metrics.get(metric)))
    for version, points in by_version.items():
        probe_axes.plot([t for t, _ in points], [v for _, v in points], marker="o", markersize=3, label=version)
    alarms = [(when(r.at), r.metrics.get(metric)) for r in probe_runs if r.alarm]
    if alarms:
        probe_axes.scatter(*zip(*alarms), color=ALARM_COLOUR, zorder=3, label="alarm")
    probe_axes.set_ylabel(f"probe {metric}")
    if by_version:
        probe_axes.legend(loc="lower left", frameon=False, ncols=min(len(by_version) + 1, 6))
    runs = sorted(drift_runs, key=lambda r: r.at)
    drift_axes.plot([when(r.at) for r in runs], [r.figures.get("share_drifted", 0.0) for r in runs],
                    color=PRODUCTION_COLOUR, marker="o", markersize=2)
    declared = [(when(r.at), r.figures.get("share_drifted", 0.0)) for r in runs if r.declared]
    if declared:
        drift_axes.scatter(*zip(*declared), color=ALARM_COLOUR, zorder=3, label="drift declared")
        drift_axes.legend(loc="upper left", frameon=False)
    drift_axes.set_ylabel("dimensions drifted")
    drift_axes.set_ylim(0, 1)
    for axes in (probe_axes, drift_axes):
        axes.spines[["top", "right"]].set_visible(False)
    times = [when(r.at) for r in [*probe_runs, *drift_runs]]
    if max(times) - min(times) < timedelta(hours=1):  # a first check or two: an hour around them
        middle = min(times) + (max(times) - min(times)) / 2
        drift_axes.set_xlim(middle - timedelta(minutes=30), middle + timedelta(minutes=30))
    locator = AutoDateLocator()
    drift_axes.xaxis.set_major_locator(locator)
    drift_axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return data_uri(figure)


def when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)
