"""The HTML report: one offline file with the figures, the ranking, the summary and the metadata."""

from __future__ import annotations

import re

from tests.twin.experiments.conftest import WriteExperiment
from twin.experiments import Experiment
from twin.experiments.report import ranking, render_report


def test_report_content(write_experiment: WriteExperiment) -> None:
    data = {
        "name": "report-study",
        "description": "Weld buffer & pack speed <study>",
        "factors": {"stations.weld.buffer": [0, 2, 5], "stations.pack.cycle_time": ["40s", "50s"]},
        "replications": 3,
        "horizon": "2h",
        "warmup": "10min",
        "kpis": ["throughput_per_hour", "lead_time_mean_s"],
    }
    result = Experiment.from_yaml(write_experiment(data)).run(workers=1)
    html = render_report(result)
    assert "Weld buffer &amp; pack speed &lt;study&gt;" in html  # text is escaped
    # one figure per KPI against the factors, a ranking, bottlenecks and station states
    assert html.count("<svg") == 2 + 1 + 1 + 1
    for heading in ("KPIs against factors", "Scenario ranking", "Bottlenecks", "Station states", "Metadata"):
        assert heading in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html) and "<script" not in html
    ranked = ranking(result, "throughput_per_hour")
    assert list(ranked["rank"]) == list(range(1, 7))
    assert ranked["mean"].is_monotonic_decreasing
    assert ranked["diff_to_best"].iloc[1:].le(0).all() and ranked["diff_to_best"].isna().iloc[0]
    lead = ranking(result, "lead_time_mean_s")
    assert lead["mean"].is_monotonic_increasing  # lower lead time is better


def test_report_of_a_single_scenario(write_experiment: WriteExperiment) -> None:
    data = {"replications": 2, "horizon": "1h", "warmup": 0}
    html = render_report(Experiment.from_yaml(write_experiment(data)).run(workers=1))
    assert "KPIs against factors" not in html and "Scenario ranking" in html
