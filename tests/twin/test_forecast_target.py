"""The forecast's target: ETA quantiles the replications do not reach within the horizon are null."""

from __future__ import annotations

import numpy as np
from scipy import stats

from twin.forecast import _quantile_or_none, forecast
from twin.line import line_from_dict
from twin.state import state_from_dict


def test_eta_quantiles_beyond_the_horizon_are_null_and_the_others_exact_order_statistics() -> None:
    """One exponential machine (mean 60 s) over 1 h: the 60th part comes with probability ~0.47."""
    line = line_from_dict(
        {"stations": [{"name": "press", "cycle_time": {"dist": "exponential", "mean": 60}}]}
    )
    state = state_from_dict({"format": "fabbrica-state/1"})
    result = forecast(line, state, horizon=3600.0, replications=300, seed=2, target=60)
    target = result["target"]
    probability = float(stats.poisson(60).sf(59))
    assert abs(target["probability"] - probability) < 3.29 * np.sqrt(probability * (1 - probability) / 300)
    eta = target["eta_s"]
    assert eta["p90"] is None  # fewer than 90 % reach it
    assert eta["p10"] is not None and 0 < eta["p10"] < 3600.0
    assert (eta["p50"] is None) == (target["probability"] < 0.5)


def test_the_quantile_with_unreached_values_is_numpys_where_it_is_finite() -> None:
    rng = np.random.default_rng(5)
    values = rng.exponential(10.0, 41)
    for cut in (0, 5, 20, 41):
        with_inf = values.copy()
        with_inf[np.argsort(values)[len(values) - cut :]] = np.inf if cut else with_inf[:0]
        for q in (0.1, 0.5, 0.9):
            found = _quantile_or_none(with_inf, q)
            position = q * (len(values) - 1)
            if np.ceil(position) >= len(values) - cut:
                assert found is None
            else:
                assert found == float(np.quantile(np.sort(values), q))
