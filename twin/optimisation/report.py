"""The optimisation report: one self-contained HTML file (inline SVG, no scripts) to open offline.

- convergence: every evaluated design's mean of the first objective in the order
  evaluated, and the best so far;
- the Pareto front of the first two objectives (several objectives);
- the selection stage: each candidate's mean with its 95% interval, the replications KN
  gave it, the round it left, and its paired difference to the chosen design;
- the chosen design, its KPIs, the line file ready to run, and the metadata.

The figure style, table and page helpers are the experiment report's.
"""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING

import numpy as np
import yaml

from twin.experiments.report import PALETTE, STYLE, _document, _figure, _svg, _table

if TYPE_CHECKING:
    from twin.optimisation.results import OptimisationResult


def convergence_figure(result: OptimisationResult, label: str, maximise: bool) -> str:
    designs = result.designs
    xs = designs["evaluation"].to_numpy(dtype=float)
    ys = designs[label].to_numpy(dtype=float)
    filled = np.where(np.isnan(ys), -np.inf if maximise else np.inf, ys)
    best = np.maximum.accumulate(filled) if maximise else np.minimum.accumulate(filled)
    figure = _figure(6.4, 2.6)
    axes = figure.subplots()
    axes.plot(xs, ys, "o", color=PALETTE[0], markersize=3, alpha=0.6, label="design (mean)")
    axes.step(xs, best, where="post", color=PALETTE[3], linewidth=1.2, label="best so far")
    axes.set_xlabel("evaluation")
    axes.set_ylabel(label)
    axes.legend(frameon=False)
    return _svg(figure)


def front_figure(result: OptimisationResult, first: str, second: str) -> str:
    designs = result.designs
    figure = _figure(4.8, 3.4)
    axes = figure.subplots()
    others = designs[~designs["pareto"]]
    front = designs[designs["pareto"]].sort_values(first)
    axes.plot(others[first], others[second], "o", color="#BBBBBB", markersize=3, label="dominated")
    axes.errorbar(
        front[first],
        front[second],
        xerr=front[f"{first}_ci95"].fillna(0),
        yerr=front[f"{second}_ci95"].fillna(0),
        fmt="-o",
        color=PALETTE[0],
        markersize=4,
        capsize=2,
        label="Pareto front",
    )
    axes.set_xlabel(first)
    axes.set_ylabel(second)
    axes.legend(frameon=False)
    return _svg(figure)


def selection_figure(result: OptimisationResult, label: str) -> str:
    shown = result.selection.dropna(subset=["mean"]).sort_values("mean", ascending=False).head(30)
    figure = _figure(6.4, 0.9 + 0.24 * len(shown))
    axes = figure.subplots()
    ys = np.arange(len(shown))[::-1]
    colours = [PALETTE[3] if chosen else PALETTE[0] for chosen in shown["chosen"]]
    for y, mean, half, colour in zip(ys, shown["mean"], shown["ci95"].fillna(0), colours, strict=True):
        axes.errorbar([mean], [y], xerr=[half], fmt="o", color=colour, markersize=4, capsize=2.5)
    axes.set_yticks(ys, shown["design"])
    axes.set_xlabel(f"{label}: selection-stage mean and 95% confidence interval")
    axes.grid(axis="y", visible=False)
    return _svg(figure)


def render_report(result: OptimisationResult) -> str:
    """The whole report as one HTML document."""
    from matplotlib import rc_context

    meta = result.metadata
    title = html.escape(result.name)
    objectives = meta["objectives"]
    primary = objectives[0]
    label = primary.get("name") or primary["kpi"]
    maximise = primary["goal"] == "maximize"
    parts = [f"<h1>Optimisation: {title}</h1>"]
    if meta.get("description"):
        parts.append(f"<p class=lead>{html.escape(str(meta['description']))}</p>")
    search = meta["search"]
    selection = meta["selection"]
    parts.append(
        _table(
            ["", ""],
            [
                ["line", f"{meta['line']} ({meta['line_file']})"],
                ["variables", ", ".join(meta["variables"])],
                ["constraints", "; ".join(json.dumps(c) for c in meta["constraints"]) or "—"],
                ["objectives", "; ".join(json.dumps(o) for o in objectives)],
                [
                    "search",
                    f"{search['method']}: {search['evaluations']} designs, {search['trials']} trials "
                    f"({search['repaired']} repaired to meet the constraints), stopped: {search['stopped']}",
                ],
                [
                    "replications",
                    f"{meta['replications']} per design (common random numbers), "
                    f"seed {meta['seeds']['seed']}",
                ],
                ["selection", f"{selection['procedure']}: {selection['guarantee']}"],
                ["runs", f"{meta['runs']} in {meta['wall_s']:.1f} s"],
            ],
            numeric_from=99,
        )
    )
    if result.designs.empty:
        parts.append("<p>No design was evaluated.</p>")
        return _document(title, parts)
    best = meta["best"]
    parts.append("<h2>The chosen design</h2>")
    if best is None:
        parts.append("<p>None: no design meets the constraints on KPIs.</p>")
    else:
        rows = [[p, v] for p, v in best["factors"].items()]
        parts.append(_table(["variable", "value"], rows, numeric_from=1))
        parts.append(
            _table(
                ["KPI", "mean", "± 95%"],
                [[k, v["mean"], v["ci95"]] for k, v in best["kpis"].items()],
            )
        )
    checks = selection.get("kpi_constraints") or []
    if checks:
        parts.append(
            _table(
                ["constraint on a KPI", "mean", "lower bound", "upper bound", "replications", "decision"],
                [
                    [
                        f"{c['constraint']}: {c['kpi']}",
                        c["mean"],
                        c["lower"],
                        c["upper"],
                        c["replications"],
                        c["decision"] + (f" at {c['confidence']:.0%}" if c["established"] else ""),
                    ]
                    for c in checks
                ],
            )
        )
    with rc_context(STYLE):
        parts.append("<h2>Convergence</h2>")
        parts.append(
            f"<figure>{convergence_figure(result, label, maximise)}<figcaption>Mean of {html.escape(label)} "
            f"over {meta['replications']} replications of each design, in the order evaluated, and the "
            "best so far (search means are biased upwards for the best: the selection stage re-estimates "
            "them with fresh replications).</figcaption></figure>"
        )
        if len(objectives) > 1:
            second = objectives[1].get("name") or objectives[1]["kpi"]
            parts.append("<h2>Pareto front</h2>")
            parts.append(f"<figure>{front_figure(result, label, second)}</figure>")
        if not result.selection.empty:
            parts.append("<h2>Selection stage</h2>")
            parts.append(
                f"<p>{html.escape(selection['guarantee'])}. Every candidate ran with fresh seeds shared by "
                "all candidates; the differences to the chosen design are paired replication by "
                "replication.</p>"
            )
            parts.append(f"<figure>{selection_figure(result, label)}</figure>")
            frame = result.selection
            feasibility = "kpi_constraints" in frame.columns  # the feasibility check's decision
            parts.append(
                _table(
                    [
                        "design",
                        "mean",
                        "± 95%",
                        "replications",
                        "eliminated after",
                        "difference to chosen",
                        "± 95%",
                        *(["constraints on KPIs"] if feasibility else []),
                    ],
                    [
                        [
                            r.design + (" (chosen)" if r.chosen else ""),
                            r.mean,
                            r.ci95,
                            r.replications,
                            _round(r.eliminated_at),
                            r.diff_to_chosen,
                            r.diff_ci95,
                            *([r.kpi_constraints] if feasibility else []),
                        ]
                        for r in frame.itertuples()
                    ],
                )
            )
    parts.append("<h2>Every design</h2>")
    columns = [c for c in result.designs.columns]
    parts.append(
        _table(columns, [list(row) for row in result.designs.itertuples(index=False)], numeric_from=1)
    )
    parts.append("<h2>The chosen line, ready to run</h2>")
    parts.append(f"<pre>{html.escape(yaml.safe_dump(result.best_line, sort_keys=False))}</pre>")
    parts.append(
        "<h2>Metadata</h2><details><summary>optimization.json</summary><pre>"
        + html.escape(json.dumps(meta, indent=2, default=str))
        + "</pre></details>"
    )
    return _document(title, parts)


def _round(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"round {int(value)}"  # type: ignore[call-overload]
