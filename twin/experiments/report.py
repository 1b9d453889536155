"""The experiment report: one self-contained HTML file a researcher can open offline and cite from.

Figures are drawn with matplotlib into inline SVG (no scripts, no network):

- each KPI against each factor, scenario means with 95% confidence bars (full
  factorials of two factors draw one line per level of the other factor);
- the scenario ranking on the first KPI, with paired differences to the best
  scenario (paired, because all scenarios share common random numbers);
- bottleneck shares per scenario (active-period method, sole + shifting);
- stacked station-state bars (working, setup, down, blocked, starved);
- the summary table and the experiment's metadata.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.experiments.stats import estimate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from twin.experiments.results import ExperimentResult

# Okabe-Ito: distinguishable in colour-blind vision and in grey print
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
STATE_COLOURS = {
    "working": "#009E73",
    "setup": "#56B4E9",
    "down": "#D55E00",
    "blocked": "#E69F00",
    "starved": "#BBBBBB",
    "waiting_repair": "#CC79A7",
    "maintenance": "#0072B2",
    "off": "#F0E442",
    "planned_stop": "#666666",
}
LABELS = {
    "throughput_per_hour": "throughput (parts/h)",
    "parts_out": "parts out",
    "scrapped": "parts scrapped",
    "wip_mean": "mean WIP (parts)",
    "lead_time_mean_s": "mean lead time (s)",
    "lead_time_p95_s": "95th percentile lead time (s)",
}
HIGHER_IS_BETTER = {
    "throughput_per_hour",
    "parts_out",
    "utilization",
    "oee",
    "availability",
    "performance",
    "quality",
}
STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "svg.fonttype": "none",
    "svg.hashsalt": "fabbrica",
}


def label(kpi: str) -> str:
    if kpi in LABELS:
        return LABELS[kpi]
    parts = kpi.split(".")
    return f"{parts[1]}: {parts[2]}" if len(parts) == 3 else kpi


def higher_is_better(kpi: str) -> bool:
    return kpi.split(".")[-1] in HIGHER_IS_BETTER


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None)


def _positions(values: list[Any]) -> tuple[list[float], list[str] | None]:
    """x positions for factor values: the numbers themselves, or category indices."""
    if _numeric(values):
        return [math.nan if v is None else float(v) for v in values], None
    categories = list(dict.fromkeys("—" if v is None else str(v) for v in values))
    return [float(categories.index("—" if v is None else str(v))) for v in values], categories


class _Table:
    """Per scenario and KPI: mean and half-width, from the summary frame."""

    def __init__(self, result: ExperimentResult) -> None:
        self.summary = result.summary
        self.scenarios = list(result.scenario_factors())
        self.factors = result.scenario_factors()

    def kpi(self, kpi: str) -> tuple[np.ndarray, np.ndarray]:
        rows = self.summary[self.summary["kpi"] == kpi].set_index("scenario")
        means = np.array([float(rows.at[s, "mean"]) if s in rows.index else math.nan for s in self.scenarios])
        half = np.array([float(rows.at[s, "ci95"]) if s in rows.index else math.nan for s in self.scenarios])
        return means, np.nan_to_num(half)


def kpi_factor_figure(result: ExperimentResult, kpi: str) -> str:
    """One panel per factor: the KPI's scenario means with 95% confidence bars against the factor."""
    table = _Table(result)
    paths = list(result.factors)
    means, half = table.kpi(kpi)
    figure = _figure(min(3.2 * len(paths), 9.6), 2.6)
    axes_list = figure.subplots(1, len(paths), squeeze=False)[0]
    for axes, path in zip(axes_list, paths, strict=True):
        values = [table.factors[s].get(path) for s in table.scenarios]
        xs, categories = _positions(values)
        others = [p for p in paths if p != path]
        groups, connect = _groups(table, others)
        for colour, (key, members) in zip(PALETTE * 8, groups.items(), strict=False):
            order = sorted(members, key=lambda i: xs[i])
            axes.errorbar(
                [xs[i] for i in order],
                [means[i] for i in order],
                yerr=[half[i] for i in order],
                fmt="-o" if connect else "o",
                color=colour,
                markersize=3.5,
                linewidth=1.0,
                capsize=2.5,
                label=key,
            )
        if not connect and len(table.scenarios) <= 8:  # few scattered points: name them
            for index, scenario in enumerate(table.scenarios):
                axes.annotate(
                    scenario, (xs[index], means[index]), xytext=(4, 3), textcoords="offset points", fontsize=7
                )
        if categories is not None:
            axes.set_xticks(range(len(categories)), categories, rotation=20)
        axes.set_xlabel(path)
        axes.set_ylabel(label(kpi))
        if 1 < len(groups) <= 6:
            axes.legend(frameon=False, title=", ".join(others), title_fontsize=7)
    return _svg(figure)


def _groups(table: _Table, others: list[str]) -> tuple[dict[str, list[int]], bool]:
    """Scenarios that share the other factors' values (one line each, if there are few such groups),
    and whether lines may join their points (only when nothing else varies along a line)."""
    groups: dict[str, list[int]] = {}
    for index, scenario in enumerate(table.scenarios):
        key = ", ".join(str(table.factors[scenario].get(p)) for p in others) if others else ""
        groups.setdefault(key, []).append(index)
    if len(groups) > 6 or all(len(members) == 1 for members in groups.values()):
        return {"": list(range(len(table.scenarios)))}, not others
    return groups, True


def ranking(result: ExperimentResult, kpi: str) -> pd.DataFrame:
    """Scenarios best first on `kpi`, with paired differences to the best (common random numbers)."""
    table = _Table(result)
    means, half = table.kpi(kpi)
    sign = -1.0 if higher_is_better(kpi) else 1.0
    order = sorted(range(len(table.scenarios)), key=lambda i: (math.isnan(means[i]), sign * means[i]))
    runs = result.runs
    best = table.scenarios[order[0]]
    best_runs = runs[runs["scenario"] == best].set_index("replication")[kpi] if len(runs) else None
    rows = []
    for rank, index in enumerate(order, start=1):
        scenario = table.scenarios[index]
        diff = estimate([])
        if best_runs is not None and scenario != best:
            mine = runs[runs["scenario"] == scenario].set_index("replication")[kpi]
            common = mine.index.intersection(best_runs.index)
            diff = estimate((mine[common] - best_runs[common]).astype(float).to_numpy())
        rows.append(
            {
                "rank": rank,
                "scenario": scenario,
                "mean": means[index],
                "ci95": half[index],
                "diff_to_best": diff.mean,
                "diff_ci95": diff.ci95,
            }
        )
    return pd.DataFrame.from_records(rows)


def ranking_figure(result: ExperimentResult, kpi: str, ranked: pd.DataFrame) -> str:
    """A dot plot of the scenario means with their 95% intervals, best on top (at most 30 shown)."""
    shown = ranked.head(30)
    figure = _figure(6.4, 0.9 + 0.22 * len(shown))
    axes = figure.subplots()
    ys = np.arange(len(shown))[::-1]
    axes.errorbar(shown["mean"], ys, xerr=shown["ci95"], fmt="o", color=PALETTE[0], markersize=4, capsize=2.5)
    axes.set_yticks(ys, shown["scenario"])
    axes.set_xlabel(f"{label(kpi)}: mean and 95% confidence interval")
    axes.grid(axis="y", visible=False)
    return _svg(figure)


def _station_means(result: ExperimentResult, metric: str) -> pd.DataFrame:
    """scenario x station table of a station metric's mean over replications."""
    stations = result.metadata["stations"]
    runs = result.runs
    data = {
        station: runs.groupby("scenario", sort=False)[f"stations.{station}.{metric}"].mean()
        for station in stations
        if f"stations.{station}.{metric}" in runs
    }
    return pd.DataFrame(data).reindex(list(result.scenario_factors()))


def bottleneck_figure(result: ExperimentResult) -> str:
    sole = _station_means(result, "bottleneck_sole")
    shifting = _station_means(result, "bottleneck_shifting")
    shares = sole + shifting
    shown = shares.head(30)
    figure = _figure(6.4, 1.0 + 0.22 * len(shown))
    axes = figure.subplots()
    ys = np.arange(len(shown))[::-1]
    left = np.zeros(len(shown))
    for colour, station in zip(PALETTE * 4, shown.columns, strict=False):
        values = shown[station].fillna(0).to_numpy()
        axes.barh(ys, values, left=left, color=colour, height=0.6, label=station)
        left += values
    axes.set_yticks(ys, shown.index)
    axes.set_xlim(0, 1)
    axes.set_xlabel("share of time as bottleneck (sole + shifting)")
    axes.grid(axis="y", visible=False)
    axes.legend(
        frameon=False, ncols=min(len(shown.columns), 6), loc="lower center", bbox_to_anchor=(0.5, 1.0)
    )
    return _svg(figure)


def states_figure(result: ExperimentResult, scenarios: list[str]) -> str:
    stations = result.metadata["stations"]
    tables = {state: _station_means(result, state) for state in STATE_COLOURS}
    columns = min(len(scenarios), 3)
    rows = math.ceil(len(scenarios) / columns)
    figure = _figure(3.2 * columns, 0.6 + (0.35 + 0.2 * len(stations)) * rows)
    grid = figure.subplots(rows, columns, squeeze=False, sharex=True)
    for index, axes in enumerate(grid.flat):
        if index >= len(scenarios):
            axes.set_visible(False)
            continue
        scenario = scenarios[index]
        ys = np.arange(len(stations))[::-1]
        left = np.zeros(len(stations))
        for state, colour in STATE_COLOURS.items():
            values = tables[state].loc[scenario].reindex(stations).fillna(0).to_numpy()
            axes.barh(ys, values, left=left, color=colour, height=0.65, label=state)
            left += values
        axes.set_yticks(ys, stations)
        axes.set_xlim(0, 1)
        axes.set_title(scenario)
        axes.grid(axis="y", visible=False)
    handles, labels = grid.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, frameon=False, ncols=5, loc="outside lower center")
    return _svg(figure)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.{digits}g}"
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value)


def _table(header: list[str], rows: list[list[Any]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class={'num' if i >= numeric_from else 'txt'}>{html.escape(_fmt(c))}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ccc}
h3{font-size:1rem}figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555}
table{border-collapse:collapse;font-size:.82rem;margin:.6rem 0;font-family:system-ui,sans-serif}
th,td{padding:.2rem .55rem;border-bottom:1px solid #e3e3e3}th{text-align:left;background:#f5f5f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fff3cd;padding:.6rem;border:1px solid #e0c36a}
pre{font-size:.75rem;background:#f7f7f7;padding:.6rem;overflow-x:auto}svg{max-width:100%;height:auto}
.lead{color:#555}
"""


def render_report(result: ExperimentResult) -> str:
    """The whole report as one HTML document."""
    from matplotlib import rc_context

    meta = result.metadata
    parts: list[str] = []
    title = html.escape(result.name)
    parts.append(f"<h1>Experiment: {title}</h1>")
    if meta.get("description"):
        parts.append(f"<p class=lead>{html.escape(str(meta['description']))}</p>")
    if result.interrupted:
        parts.append(
            "<p class=warn>The experiment was interrupted: these results cover only the runs that "
            "had finished.</p>"
        )
    parts.append(_overview(result))
    if result.runs.empty:
        parts.append("<p>No run finished.</p>")
        return _document(title, parts)
    with rc_context(STYLE):
        if result.factors:
            parts.append("<h2>KPIs against factors</h2>")
            for kpi in result.kpis:
                parts.append(
                    f"<figure>{kpi_factor_figure(result, kpi)}<figcaption>{html.escape(label(kpi))} "
                    "for each scenario: mean over replications with its 95% confidence interval "
                    "(Student t).</figcaption></figure>"
                )
        primary = result.kpis[0]
        ranked = ranking(result, primary)
        direction = "highest" if higher_is_better(primary) else "lowest"
        parts.append(f"<h2>Scenario ranking on {html.escape(label(primary))}</h2>")
        parts.append(
            f"<p>Best first ({direction} mean). The difference to the best scenario is paired "
            "replication by replication: all scenarios share common random numbers, so the paired "
            "interval is narrower than the two separate ones.</p>"
        )
        parts.append(f"<figure>{ranking_figure(result, primary, ranked)}</figure>")
        factors = result.scenario_factors()
        paths = list(result.factors)
        parts.append(
            _table(
                ["rank", "scenario", *paths, "mean", "± 95%", "difference to best", "± 95%"],
                [
                    [
                        row.rank,
                        row.scenario,
                        *(factors[row.scenario].get(p) for p in paths),
                        row.mean,
                        row.ci95,
                        row.diff_to_best,
                        row.diff_ci95,
                    ]
                    for row in ranked.itertuples()
                ],
                numeric_from=2 + len(paths),
            )
        )
        parts.append("<h2>Bottlenecks</h2>")
        parts.append(
            f"<figure>{bottleneck_figure(result)}<figcaption>Mean share of the observed time each "
            "station was the bottleneck (active-period method: sole plus shifting bottleneck), per "
            "scenario.</figcaption></figure>"
        )
        order = list(ranked["scenario"])
        shown = order if len(order) <= 6 else order[:3] + order[-3:]
        which = "every scenario" if len(order) <= 6 else "the three best and the three worst scenarios"
        parts.append("<h2>Station states</h2>")
        parts.append(
            f"<figure>{states_figure(result, shown)}<figcaption>Mean share of machine time in each "
            f"state per station, for {which} (ranked on {html.escape(label(primary))}).</figcaption>"
            "</figure>"
        )
    parts.append("<h2>Summary</h2>")
    summary = result.summary
    parts.append(
        _table(
            ["scenario", "KPI", "mean", "std", "± 95%", "replications"],
            [[r.scenario, r.kpi, r.mean, r.std, r.ci95, r.replications] for r in summary.itertuples()],
            numeric_from=2,
        )
    )
    parts.append(
        "<h2>Metadata</h2><details><summary>experiment.json</summary><pre>"
        + html.escape(json.dumps(meta, indent=2, default=str))
        + "</pre></details>"
    )
    return _document(title, parts)


def _overview(result: ExperimentResult) -> str:
    meta = result.metadata
    design = meta["design"]
    reps = meta["replications"]
    if reps["rule"] == "fixed":
        rule = f"{reps['replications']} per scenario"
    else:
        target = (
            f"relative half-width {reps['relative_half_width']}"
            if "relative_half_width" in reps
            else f"half-width {reps['half_width']}"
        )
        rule = f"until the 95% {target} on {reps['kpi']} (min {reps['min']}, max {reps['max']})"
    warm = meta["warmup"]
    warmup_s = warm.get("warmup_s")
    warmup = "—" if warmup_s is None else f"{warmup_s / 3600:.3g} h"
    if warm["mode"] == "auto":
        warmup += " (MSER-5, pilot runs)"
    executor = meta["executor"]
    rows = [
        ["line", f"{meta['line']} ({meta['line_file']}): {', '.join(meta['stations'])}"],
        ["design", f"{design['type']}, {len(design['scenarios'])} scenarios"],
        ["factors", ", ".join(result.factors) or "—"],
        ["overrides", ", ".join(f"{k} = {v}" for k, v in meta["overrides"].items()) or "—"],
        ["replications", rule],
        ["horizon / warm-up", f"{meta['horizon_s'] / 3600:.3g} h / {warmup}"],
        ["seed", str(meta["seeds"]["experiment"])],
        [
            "runs",
            f"{meta['runs']} in {meta['wall_s']:.1f} s on {executor.get('executor')} "
            f"({executor.get('workers')} workers)",
        ],
        ["git commit", meta.get("git_commit") or "—"],
        ["versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items())],
        ["finished", meta["finished_at"]],
    ]
    return _table(["", ""], rows, numeric_from=99)


def _document(title: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{title}</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
