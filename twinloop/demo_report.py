"""The demo's report: one self-contained HTML file telling the digital-twin loop from line to what-if.

Sections: what the line did (throughput over time, station states), what calibration
learned (fitted cycle-time distributions over the recorded histograms), how the calibrated
twin compares with the line (validation), the what-if experiment, and the forecast made at
the middle of the window against what the line then did (the fan). Figures are inline SVG.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from twin.calibration.records import StationRecord
from twin.experiments.report import (
    CSS,
    STATE_COLOURS,
    STYLE,
    _figure,
    _svg,
    _table,
    kpi_factor_figure,
)
from twin.station import REPORTED_STATES

if TYPE_CHECKING:
    from twinloop.demo import DemoResult


def _throughput_figure(records: dict[str, StationRecord], last: str, window: float) -> str:
    record = records[last]
    hours = max(1, int(np.ceil(window / 3600)))
    good = [t for t, scrapped in zip(record.part_times, record.scrapped, strict=True) if not scrapped]
    counts, edges = np.histogram(np.asarray(good) / 3600, bins=hours, range=(0, hours))
    figure = _figure(6.5, 2.2)
    axes = figure.subplots()
    axes.bar(edges[:-1], counts, width=0.9, align="edge", color="#0072B2")
    axes.set_xlabel("line time (h)")
    axes.set_ylabel("good parts per hour")
    axes.set_title(f"throughput at {last}, as recorded by the connectors")
    return _svg(figure)


def _states_figure(observed: dict[str, dict[str, float]], twin: dict[str, dict[str, float]]) -> str:
    names = list(observed)
    figure = _figure(6.5, 0.5 + 0.55 * len(names))
    axes = figure.subplots()
    rows = []
    labels = []
    for name in names:
        rows += [observed[name], twin[name]]
        labels += [f"{name} (line)", f"{name} (twin)"]
    left = np.zeros(len(rows))
    positions = np.arange(len(rows))[::-1]
    for state in REPORTED_STATES:
        values = np.array([row.get(state, 0.0) for row in rows])
        if not values.any():
            continue  # a state neither the line nor the twin was in: no bar, no legend entry
        axes.barh(positions, values, left=left, color=STATE_COLOURS[state], label=state, height=0.8)
        left += values
    axes.set_yticks(positions, labels)
    axes.set_xlim(0, 1)
    axes.set_xlabel("share of time")
    axes.legend(ncols=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return _svg(figure)


def _forecast_figure(midway: dict[str, Any]) -> str:
    """The fan (P10-P90 band, P50) of the parts out after the middle and what the line then made;
    below, the same less the twin's P50, where the band's width shows."""
    start_h = midway["at_s"] / 3600
    path = midway["forecast"]["path"]
    seconds = np.array([0.0] + [point["t_s"] for point in path])
    hours = start_h + seconds / 3600
    quantile = {q: np.array([0.0] + [point[q] for point in path]) for q in ("p10", "p50", "p90")}
    exits = np.asarray(midway["actual"]["exits_s"], dtype=float)
    line_s = np.concatenate([[0.0], exits, [midway["horizon_s"]]])
    counts = np.concatenate([[0], np.arange(1, len(exits) + 1), [len(exits)]])
    figure = _figure(6.5, 3.6)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    band = {"color": "#56B4E9", "alpha": 0.35, "lw": 0, "label": "twin P10-P90"}
    for axes, less in ((top, np.zeros_like(seconds)), (bottom, quantile["p50"])):
        axes.fill_between(hours, quantile["p10"] - less, quantile["p90"] - less, **band)
        axes.plot(hours, quantile["p50"] - less, color="#0072B2", ls="--", label="twin P50")
        median_then = np.interp(line_s, seconds, quantile["p50"]) if axes is bottom else 0.0
        axes.step(
            start_h + line_s / 3600, counts - median_then, where="post", color="#000000", lw=1.1, label="line"
        )
    top.set_ylabel("good parts out\nsince the middle")
    top.set_title("forecast from the state at the middle of the window, against the line")
    top.legend(frameon=False, loc="upper left")
    bottom.set_ylabel("less the\ntwin's P50")
    bottom.set_xlabel("line time (h)")
    return _svg(figure)


def _forecast_section(midway: dict[str, Any]) -> list[str]:
    result = midway["forecast"]
    parts = result["parts_out"]
    actual = midway["actual"]["parts_out"]
    state = midway["state"]
    buffered = sum(station.get("buffer", 0) for station in state["stations"].values())
    machines = [m for station in state["stations"].values() for m in station.get("machines", [])]
    down = sum(machine["state"] == "down" for machine in machines)
    working = sum(machine["state"] == "working" for machine in machines)
    inside = "inside" if midway["inside_p10_p90"] else "outside"
    return [
        "<h2>5. Forecast from the middle of the window</h2>",
        f"<p>The line's state at {html.escape(midway['at'])} was rebuilt from the historian (each "
        f"PLC's state, buffer level, product and last state change): {buffered} parts in the buffers, "
        f"{working} machines working, {down} down. From that state the calibrated twin ran "
        f"{result['replications']} replications ({html.escape(result['engine'])}) to the end of the "
        f"window; the line then made <b>{actual}</b> good parts, {inside} the twin's P10-P90 band.</p>",
        _table(
            ["", "parts out"],
            [
                ["forecast P10", f"{parts['p10']:.0f}"],
                ["forecast P50", f"{parts['p50']:.0f}"],
                ["forecast P90", f"{parts['p90']:.0f}"],
                ["forecast mean ± 95 %", f"{parts['mean']:.1f} ± {parts['ci95']:.1f}"],
                ["line (recorded)", str(actual)],
                ["horizon", f"{midway['horizon_s'] / 3600:.2f} h"],
                ["bottleneck (twin)", result["bottleneck"]],
            ],
            numeric_from=1,
        ),
        f"<figure>{_forecast_figure(midway)}</figure>",
    ]


def _fit_figure(name: str, samples: list[float], spec: dict[str, Any]) -> str:
    data = np.asarray(samples, dtype=float)
    figure = _figure(3.1, 2.0)
    axes = figure.subplots()
    axes.hist(data, bins=30, density=True, color="#BBBBBB", label="recorded")
    grid = np.linspace(max(0.0, data.min() * 0.8), data.max() * 1.1, 200)
    pdf = _pdf(spec, grid)
    if pdf is not None:
        axes.plot(grid, pdf, color="#D55E00", label=f"fitted {spec['dist']}")
    axes.set_title(f"{name}: cycle time (s)")
    axes.legend(frameon=False)
    return _svg(figure)


def _pdf(spec: dict[str, Any], grid: np.ndarray) -> np.ndarray | None:
    kind = spec["dist"]
    if kind == "exponential":
        return stats.expon(scale=spec["mean"]).pdf(grid)
    if kind == "normal":
        return stats.norm(spec["mean"], spec["sd"]).pdf(grid)
    if kind == "gamma":
        shape = 1 / spec["cv"] ** 2
        return stats.gamma(shape, scale=spec["mean"] / shape).pdf(grid)
    if kind == "lognormal":
        sigma2 = np.log1p(spec["cv"] ** 2)
        return stats.lognorm(np.sqrt(sigma2), scale=spec["mean"] / np.exp(sigma2 / 2)).pdf(grid)
    return None


def render(result: DemoResult, records: dict[str, StationRecord], window: float) -> str:
    from matplotlib import rc_context

    line = result.line
    validation = result.validation
    parts = [
        f"<h1>fabbrica demo: {html.escape(line.name)}</h1>",
        "<p class=lead>The simulated pilot line streamed its PLC values (OPC UA) and sensor and part "
        "events (MQTT) through the connectors into the historian; the twin was calibrated from that "
        "data, validated against it, and asked a what-if question.</p>",
        _table(
            ["", ""],
            [
                ["recorded window", f"{result.started.isoformat()} .. {result.ended.isoformat()}"],
                ["line time", f"{window / 3600:.2f} h at speed {result.speed:g}"],
                ["parts out (truth)", str(_truth_out(result.truth, line.stations[-1].name))],
                *[[f"connector {key}", str(value)] for key, value in result.connector.items()],
            ],
            numeric_from=99,
        ),
    ]
    with rc_context(STYLE):
        parts.append("<h2>1. What the line did</h2>")
        parts.append(f"<figure>{_throughput_figure(records, line.stations[-1].name, window)}</figure>")
        observed = {name: entry.get("observed") or {} for name, entry in validation["stations"].items()}
        twin = {name: entry["twin"] for name, entry in validation["stations"].items()}
        parts.append("<h2>2. Calibration</h2>")
        rows = []
        figures = []
        for calibration in result.calibration:
            record = records.get(calibration.name)
            for product, fit in calibration.cycle_fits.items():
                rows.append(
                    [
                        calibration.name if product == "*" else f"{calibration.name} ({product})",
                        fit.best.family,
                        fit.n,
                        f"{fit.report_mean:.2f}",
                        f"{fit.cv:.3f}",
                        f"{fit.best.ks_statistic:.3f}",
                        f"{fit.best.ks_pvalue:.3f}",
                    ]
                )
            if record is not None and calibration.cycle_fits and "*" in calibration.cycle_fits:
                figures.append(
                    _fit_figure(calibration.name, record.cycle_times, calibration.cycle_fits["*"].best.spec)
                )
        parts.append(_table(["station", "chosen family (AIC)", "n", "mean (s)", "cv", "KS D", "KS p"], rows))
        failures = [
            [
                c.name,
                c.failures_observed,
                "-" if c.mtbf_s is None else f"{c.mtbf_s / 60:.1f}",
                "-" if c.repair_fit is None else f"{c.repair_fit.report_mean / 60:.2f}",
                "-" if c.scrap_rate is None else f"{c.scrap_rate:.3%}",
                "; ".join(c.warnings) or "",
            ]
            for c in result.calibration
        ]
        parts.append(
            _table(["station", "breakdowns", "MTBF (min)", "MTTR (min)", "scrap", "warnings"], failures)
        )
        parts.append("<figure>" + "".join(figures) + "</figure>")
        parts.append("<h2>3. Validation</h2>")
        throughput = validation["throughput"]
        parts.append(
            f"<p>Throughput: line {throughput['observed']:.2f}/h, twin {throughput['twin_mean']:.2f} ± "
            f"{throughput['twin_ci95']:.2f}/h (95 %), relative error {throughput['rel_error']:.1%}. "
            + (
                f"WIP: line {validation['wip']['observed']:.2f}, twin {validation['wip']['twin_mean']:.2f} "
                f"± {validation['wip']['twin_ci95']:.2f} parts, relative error "
                f"{validation['wip']['rel_error']:.1%}. "
                if "wip" in validation
                else ""
            )
            + f"Verdict: <b>{validation['verdict']}</b> at a tolerance of {validation['tolerance']:.0%}.</p>"
        )
        parts.append(f"<figure>{_states_figure(observed, twin)}</figure>")
        parts.append("<h2>4. What if?</h2>")
        experiment = result.experiment
        parts.append(f"<p>{html.escape(experiment.name)}: {len(experiment.runs)} runs.</p>")
        for kpi in experiment.kpis:
            parts.append(f"<figure>{kpi_factor_figure(experiment, kpi)}</figure>")
        summary = experiment.summary
        parts.append(
            _table(
                ["scenario", "kpi", "mean", "std", "ci95", "n"],
                [
                    [r.scenario, r.kpi, f"{r.mean:.3f}", f"{r.std:.3f}", f"{r.ci95:.3f}", r.replications]
                    for r in summary.itertuples()
                ],
                numeric_from=2,
            )
        )
        if result.midway:
            parts += _forecast_section(result.midway)
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>fabbrica demo: {html.escape(line.name)}</title><style>{CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def _truth_out(truth: dict[str, Any], last: str) -> Any:
    return truth.get("stations", {}).get(last, {}).get("parts_produced", "?")


def write_report(result: DemoResult, records: dict[str, StationRecord], window: float) -> Path:
    path = result.out / "report.html"
    path.write_text(render(result, records, window), encoding="utf-8")
    return path
