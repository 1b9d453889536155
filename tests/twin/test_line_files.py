"""Line files: the YAML contract, durations, distributions and one-line errors naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.config import ConfigError, config_from_dict
from foundation.durations import parse_duration
from tests.conftest import DEMONSTRATOR, ROOT
from twin.distributions import (
    Constant,
    Empirical,
    Exponential,
    Gamma,
    Lognormal,
    Normal,
    Triangular,
    Uniform,
    Weibull,
)
from twin.line import LineError, line_from_dict, load_line, read_yaml


def base_line(**station: Any) -> dict[str, Any]:
    first = {"name": "mill", "cycle_time": 55, **station}
    return {"name": "t", "stations": [first, {"name": "paint", "cycle_time": 50}]}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("5min", 300.0),
        ("8h", 28800.0),
        ("1.5d", 129600.0),
        ("250ms", 0.25),
        ("1w", 604800.0),
        ("-0", 0.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5 minutes", "abc", "-3", "", "1e999", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_signed_durations_leave_the_bound_to_the_caller() -> None:
    assert parse_duration("-90s", signed=True) == -90.0
    with pytest.raises(ValueError, match=r"must be >= 0, got '-90s'"):
        parse_duration("-90s")


def _connector(interval: object) -> float:
    mqtt = [{"url": "mqtt://h", "topics": [{"filter": "a/#"}]}]
    document = {"health": {"interval": interval}, "mqtt": mqtt}
    return config_from_dict(document, "connect.yaml", {}).config.health.interval


def _line(horizon: object) -> float:
    data = {"horizon": horizon, "stations": [{"name": "a", "cycle_time": 1}]}
    return line_from_dict(data, "line.yaml").horizon


@pytest.mark.parametrize(
    ("text", "seconds"), [("1w", 604800.0), ("100ms", 0.1), ("2min", 120.0), ("1.5d", 129600.0), (30, 30.0)]
)
def test_a_duration_means_the_same_in_a_line_file_and_a_connector_file(text: object, seconds: float) -> None:
    assert _line(text) == _connector(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", r"not a duration: 'soon' \(use seconds or e\.g\. 100ms, 90s, 5min, 8h\)"),
        (
            "5 minutes",
            r"unknown time unit 'minutes' in '5 minutes' \(allowed: ms, s, sec, min, m, h, hr, d, w\)",
        ),
        ("-5s", r"must be > 0"),
        ("inf", r"not a duration: 'inf'"),
        (1e400, r"not a finite duration"),
        (True, r"expected a duration, got True"),
    ],
)
def test_a_bad_duration_is_refused_alike_in_both(text: object, message: str) -> None:
    with pytest.raises(LineError, match=rf"^line\.yaml: horizon: {message}"):
        _line(text)
    with pytest.raises(ConfigError, match=rf"^connect\.yaml: health\.interval: {message}"):
        _connector(text)


def test_the_contract_example_loads(write_line: Any) -> None:
    path = write_line(
        {
            "name": "demo-line",
            "release": "saturated",
            "products": [{"name": "A", "mix": 0.7}, {"name": "B", "mix": 0.3}],
            "horizon": "8h",
            "warmup": "1h",
            "seed": 1,
            "stations": [
                {
                    "name": "mill",
                    "cycle_time": {"dist": "lognormal", "mean": 55, "cv": 0.2},
                    "capacity": 1,
                    "buffer": 4,
                    "failures": {"mtbf": "2h", "mttr": "10min", "basis": "operating"},
                    "setup": "2min",
                    "scrap": 0.01,
                }
            ],
        }
    )
    line = load_line(path)
    mill = line.stations[0]
    assert line.horizon == 28800 and line.warmup == 3600
    assert mill.failures is not None and mill.failures.time_to_failure.mean == 7200
    assert mill.failures.time_to_repair.mean == 600
    assert isinstance(mill.setup, Constant) and mill.setup.value == 120
    assert line.product_mix == {"A": 0.7, "B": 0.3}


def test_release_forms() -> None:
    interarrival = line_from_dict(
        {**base_line(), "release": {"interarrival": {"dist": "exponential", "mean": 60}}}
    )
    assert interarrival.release.interarrival.mean == 60  # type: ignore[union-attr]
    conwip = line_from_dict({**base_line(), "release": {"conwip": 12}})
    assert conwip.release.conwip == 12  # type: ignore[union-attr]


def test_per_product_cycle_times_must_cover_products() -> None:
    data = base_line(cycle_time={"A": 50})
    data["products"] = [{"name": "A", "mix": 1}, {"name": "B", "mix": 1}]
    with pytest.raises(LineError, match=r"stations\[0\]\.cycle_time: no cycle time for product 'B'"):
        line_from_dict(data, "line.yaml")


@pytest.mark.parametrize(
    ("station", "expected"),
    [
        (
            {"failures": {"mtbf": "2h", "mttr": -5}},
            r"^line\.yaml: stations\[0\]\.failures\.mttr: must be > 0",
        ),
        (
            {"failures": {"mtbf": "2h"}},
            r"^line\.yaml: stations\[0\]\.failures: give exactly one of mttr or ttr",
        ),
        ({"capacity": 0}, r"^line\.yaml: stations\[0\]\.capacity: must be >= 1"),
        ({"buffer": -1}, r"^line\.yaml: stations\[0\]\.buffer: must be >= 0"),
        ({"scrap": 1.5}, r"^line\.yaml: stations\[0\]\.scrap: must be < 1"),
        ({"colour": "red"}, r"^line\.yaml: stations\[0\]\.colour: unknown key"),
        (
            {"cycle_time": {"dist": "pareto", "mean": 3}},
            r"stations\[0\]\.cycle_time: unknown distribution 'pareto' \(allowed: .*weibull",
        ),
        (
            {"cycle_time": {"dist": "weibull", "shape": 0, "mean": 3}},
            r"stations\[0\]\.cycle_time\.shape: must be > 0",
        ),
        (
            {"cycle_time": {"dist": "weibull", "shape": -1.5, "scale": 3}},
            r"stations\[0\]\.cycle_time\.shape: must be > 0",
        ),
        (
            {"cycle_time": {"dist": "weibull", "shape": 2, "scale": 0}},
            r"stations\[0\]\.cycle_time\.scale: must be > 0",
        ),
        (
            {"failures": {"ttf": {"dist": "weibull", "shape": 2, "mean": "-1h"}, "mttr": 5}},
            r"stations\[0\]\.failures\.ttf\.mean: must be > 0",
        ),
        (
            {"cycle_time": {"dist": "weibull", "shape": 2, "scale": 3, "mean": 3}},
            r"stations\[0\]\.cycle_time: give exactly one of scale or mean",
        ),
        (
            {"cycle_time": {"dist": "weibull", "shape": 2}},
            r"stations\[0\]\.cycle_time: give exactly one of scale or mean",
        ),
        (
            {"cycle_time": {"dist": "weibull", "mean": 3}},
            r"stations\[0\]\.cycle_time\.shape: required field missing",
        ),
        (
            {"cycle_time": {"dist": "weibull", "shape": 0.005, "mean": 3}},
            r"stations\[0\]\.cycle_time: shape 0\.005 is too small",
        ),
        (
            {"cycle_time": {"dist": "lognormal", "mean": 3}},
            r"stations\[0\]\.cycle_time\.cv: required field missing",
        ),
        ({"cycle_time": "5 minutes"}, r"stations\[0\]\.cycle_time\.value: unknown time unit 'minutes'"),
        (
            {"cycle_time": {"dist": "uniform", "low": 5, "high": 1}},
            r"stations\[0\]\.cycle_time: high must be >= low",
        ),
        ({"failures": {"mtbf": 1, "mttr": 1, "basis": "wall"}}, r"stations\[0\]\.failures\.basis: must be"),
        ({"setup": {"dist": "exponential", "mean": 0}}, r"stations\[0\]\.setup\.mean: must be > 0"),
    ],
)
def test_errors_name_file_and_field(station: dict[str, Any], expected: str) -> None:
    with pytest.raises(LineError, match=expected) as error:
        line_from_dict(base_line(**station), "line.yaml")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"release": "random"}, r"release: must be"),
        ({"release": {"push": 3}}, r"release: must be 'saturated'"),
        ({"stations": []}, r"stations: must have at least 1 item"),
        ({"warmup": "9h", "horizon": "8h"}, r"warmup must be shorter than horizon"),
        ({"horizont": "8h"}, r"horizont: unknown key"),
    ],
)
def test_line_level_errors(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(LineError, match=expected):
        line_from_dict({**base_line(), **change}, "line.yaml")


def test_duplicate_station_names_name_the_index() -> None:
    data = {
        "stations": [
            {"name": "a", "cycle_time": 1},
            {"name": "b", "cycle_time": 1},
            {"name": "a", "cycle_time": 1},
        ]
    }
    with pytest.raises(LineError, match=r"stations\[2\]\.name: duplicate station name 'a'"):
        line_from_dict(data, "line.yaml")


def test_yaml_and_file_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("stations: [\n  - {name: a\n")
    with pytest.raises(LineError, match=r"broken\.yaml: invalid YAML at line \d+"):
        load_line(broken)
    with pytest.raises(LineError, match=r"missing\.yaml: file not found"):
        load_line(tmp_path / "missing.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(LineError, match="expected a mapping"):
        load_line(scalar)


DISTRIBUTIONS = [
    Constant(value=7),
    Exponential(dist="exponential", mean=10),
    Normal(dist="normal", mean=10, sd=2),
    Normal(dist="normal", mean=1, sd=2),
    Lognormal(dist="lognormal", mean=10, cv=0.5),
    Gamma(dist="gamma", mean=10, cv=0.7),
    Uniform(dist="uniform", low=2, high=6),
    Triangular(dist="triangular", low=1, mode=2, high=6),
    Weibull(dist="weibull", shape=2.5, mean=10),
    Weibull(dist="weibull", shape=0.7, scale=10),
    Empirical(dist="empirical", samples=[1, 2, 3, 10]),
]


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: f"{d.dist}")
def test_distribution_means_and_support(dist: Any) -> None:
    rng = np.random.default_rng(5)
    sample = dist.draw(rng, 200_000)
    assert (sample >= 0).all()
    half_width = 3.29 * sample.std(ddof=1) / np.sqrt(len(sample))  # 99.9 % interval
    assert abs(sample.mean() - dist.mean) <= half_width + 1e-12


def test_block_size_does_not_change_the_stream() -> None:
    dist = Gamma(dist="gamma", mean=10, cv=0.7)
    one = dist.sampler(np.random.default_rng(3), block=7)
    other = dist.sampler(np.random.default_rng(3), block=256)
    assert [one() for _ in range(100)] == [other() for _ in range(100)]


def test_shipped_demonstrator_is_valid() -> None:
    line = load_line(DEMONSTRATOR)
    assert len(line.stations) >= 5 and len(line.products) == 2
    assert any(s.failures for s in line.stations) and any(s.setup for s in line.stations)
    assert any(s.scrap > 0 for s in line.stations)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"stations": [{"name": "a", "cycle_time": 0}]}, r"stations\[0\]\.cycle_time: mean must be > 0"),
        (
            {"stations": [{"name": "a", "cycle_time": {"dist": "empirical", "samples": [0, 0]}}]},
            r"stations\[0\]\.cycle_time: mean must be > 0",
        ),
        (
            {"release": {"interarrival": 0}, "stations": [{"name": "a", "cycle_time": 5}]},
            r"release\.interarrival: mean must be > 0",
        ),
    ],
)
def test_zero_durations_that_would_stall_the_clock_are_refused(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(LineError, match=expected):
        line_from_dict(change, "line.yaml")


# -- lines as networks (docs/networks.md): the new keys, each bad one refused in one line ------------
ASSEMBLY = ROOT / "simulations" / "lines" / "assembly.yaml"


def _station(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(station for station in data["stations"] if station["name"] == name)


def _set(name: str, key: str, value: Any) -> Any:
    return lambda data: _station(data, name).__setitem__(key, value)


def _route(product: str, stations: list[str]) -> Any:
    return lambda data: data["routes"].__setitem__(product, stations)


def _cycle(data: dict[str, Any]) -> None:
    data.pop("routes")
    data["products"] = [{"name": "A"}]
    data["stations"] = [
        {"name": "a", "cycle_time": 1},
        {"name": "b", "cycle_time": 1, "inputs": ["c"]},
        {"name": "c", "cycle_time": 1, "inputs": ["b"]},
    ]


def _unpin_press(data: dict[str, Any]) -> None:
    press = _station(data, "press")
    del press["release"], press["product"]


NETWORK_ERRORS = {
    "inputs-unknown-station": (
        _set("assembly", "inputs", ["wash", "debur"]),
        r"stations\[5\]\.inputs\[1\]: unknown station 'debur' \(stations: mill, lathe, wash, press",
    ),
    "routes-unknown-station": (
        _route("B", ["mill", "lathe", "asembly", "screw", "test", "pack"]),
        r"routes\.B\[2\]: unknown station 'asembly' \(stations: mill,",
    ),
    "routes-unknown-product": (
        _route("C", ["mill"]),
        r"routes\.C: unknown product \(products: A, B, cover\)",
    ),
    "rework-to-unknown-station": (
        _set("test", "rework", {"probability": 0.05, "to": "scrw"}),
        r"stations\[7\]\.rework\.to: unknown station 'scrw'",
    ),
    "rework-into-an-assembly": (
        _set("test", "rework", {"probability": 0.05, "to": "assembly"}),
        r"stations\[7\]\.rework\.to: 'assembly' is an assembly: a part cannot go back into it",
    ),
    "rework-past-an-assembly": (
        _set("test", "rework", {"probability": 0.05, "to": "lathe"}),
        r"stations\[7\]\.rework\.to: a part sent back to 'lathe' would pass the assembly 'assembly' again",
    ),
    "rework-downstream": (
        _set("screw", "rework", {"probability": 0.05, "to": "test"}),
        r"stations\[6\]\.rework\.to: 'test' is not 'screw' itself or upstream of it",
    ),
    "rework-off-the-route": (
        _route("B", ["mill", "lathe", "assembly", "test", "pack"]),
        r"routes\.B: visits 'test', which sends parts back to 'screw', not on the route before it",
    ),
    "rework-probability-1": (
        _set("test", "rework", {"probability": 1, "to": "screw"}),
        r"stations\[7\]\.rework\.probability: must be < 1",
    ),
    "route-into-an-assembly-from-outside-its-branches": (
        _route("B", ["mill", "screw", "assembly", "test", "pack"]),
        r"routes\.B\[2\]: 'assembly' is an assembly; the route comes to it from 'screw',"
        r" which is in none of its inputs' branches \(wash, deburr\)",
    ),
    "route-of-a-component-goes-on": (
        _route("cover", ["press", "deburr", "assembly", "screw"]),
        r"routes\.cover\[2\]: 'cover' joins 'assembly' as a component \(not its first input\)",
    ),
    "route-not-from-the-first-station": (
        _route("B", ["lathe", "assembly", "screw", "test", "pack"]),
        r"routes\.B\[0\]: with a saturated release every route starts at the first station 'mill'",
    ),
    "product-on-a-non-head": (
        _set("deburr", "product", "cover"),
        r"stations\[4\]\.product: only a branch head \(a station with its own `release`\) makes a product;"
        r" 'deburr' has none",
    ),
    "product-unknown": (_set("press", "product", "lid"), r"stations\[3\]\.product: unknown product 'lid'"),
    "conwip-on-a-branch": (
        _set("press", "release", {"conwip": 5}),
        r"stations\[3\]\.release: a branch's release is 'saturated' or \{interarrival: DIST\};"
        r" \{conwip: N\} is only the line's release",
    ),
    "branch-arrivals-all-at-once": (
        _set("press", "release", {"interarrival": 0}),
        r"stations\[3\]\.release\.interarrival: mean must be > 0",
    ),
    "cycle": (_cycle, r"stations\[1\]\.inputs: the stations feed each other in a cycle \(b -> c -> b\)"),
    "first-station-with-inputs": (
        _set("mill", "inputs", ["pack"]),
        r"stations\[0\]\.inputs: the first station takes the line's release and has no inputs",
    ),
    "fed-twice": (
        _set("screw", "inputs", ["wash"]),
        r"stations\[6\]\.inputs: 'wash' already feeds 'assembly': a station feeds one station",
    ),
    "fed-twice-by-file-order": (
        _unpin_press,
        r"stations\[3\]: 'press' is fed by 'wash', the station before it in the file, and 'assembly' lists"
        r" 'wash' in its `inputs` too: give 'press' its own `release` \(a branch head\) or `inputs`",
    ),
    "head-with-inputs": (
        _set("press", "inputs", ["wash"]),
        r"stations\[3\]\.inputs: a branch head \(with `release`\) has no inputs",
    ),
    "transport-capacity-0": (
        _set("pack", "transport", {"time": 60, "capacity": 0}),
        r"stations\[8\]\.transport\.capacity: must be >= 1",
    ),
    "transport-without-time": (
        _set("pack", "transport", {"capacity": 2}),
        r"stations\[8\]\.transport\.time: required field missing",
    ),
}


def test_shipped_assembly_line_is_a_network() -> None:
    line = load_line(ASSEMBLY)
    assert line.is_network and line.routes is not None and len(line.routes) == 2
    keys = ("inputs", "release", "product", "rework", "transport")
    used = {key for station in line.stations for key in keys if getattr(station, key) is not None}
    assert used == set(keys)


@pytest.mark.parametrize("case", NETWORK_ERRORS)
def test_network_errors_name_file_and_field(case: str) -> None:
    change, expected = NETWORK_ERRORS[case]
    data = read_yaml(ASSEMBLY)
    change(data)
    with pytest.raises(LineError, match=rf"^assembly\.yaml: {expected}") as error:
        line_from_dict(data, "assembly.yaml")
    assert "\n" not in str(error.value)


def test_a_network_station_lists_cycle_times_only_for_the_products_it_processes() -> None:
    """The cover press needs no time for the base product, nor the assembly for the cover (a
    component): a network line lists per station the products that are processed there."""
    from twin.engine import simulate

    exponential = {"dist": "exponential", "mean": 50}
    data = {
        "products": [{"name": "base"}, {"name": "cover"}],
        "stations": [
            {"name": "mill", "cycle_time": {"base": exponential}},
            {"name": "press", "cycle_time": {"cover": exponential}, "release": "saturated",
             "product": "cover"},
            {"name": "assembly", "cycle_time": {"base": exponential}, "inputs": ["mill", "press"]},
        ],
    }
    line = line_from_dict(data)
    assert line.stations[2].mean_cycle_time(line.product_mix) == 50
    assert simulate(line, seed=1, horizon=3600.0).kpis["parts_out"] > 0
    data["stations"][2]["cycle_time"] = {"cover": exponential}
    with pytest.raises(LineError, match=r"stations\[2\]\.cycle_time: no cycle time for product 'base'"):
        line_from_dict(data)
