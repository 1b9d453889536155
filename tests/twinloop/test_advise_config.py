"""The advice's configuration: the sample is the reference, action axes expand as documented, and the
live twin's `advise:` block is checked against the line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from twin.line import load_line
from twinloop.advise_config import SAMPLE, AdviseConfig, ApplySpec, axis_values, limits_of, read_advise_config
from twinloop.live_config import LiveConfigError, read_live_config

ROOT = Path(__file__).resolve().parents[2]
LINE = ROOT / "simulations/lines/released.yaml"


def test_the_sample_loads_and_shows_every_key() -> None:
    setup = read_advise_config(SAMPLE, environ={"OPCUA_PASSWORD": "pw"})
    assert setup.line.name == "released" and setup.sink == setup.source
    assert setup.objective.describe() == "minimize lead_time_mean_s subject to throughput_per_hour >= 150"
    assert setup.limits.bounds["release.interarrival.mean"] == (12.0, 40.0)
    assert setup.config.apply is not None and setup.config.apply.password.get_secret_value() == "pw"
    text = SAMPLE.read_text()
    keys = [*AdviseConfig.model_fields, *(f"  {key}" for key in ApplySpec.model_fields)]
    missing = [key for key in keys if not re.search(rf"^ *#? ?{key.strip()}:", text, re.M)]
    assert not missing, f"keys the sample does not show: {missing}"


@pytest.mark.parametrize(
    ("axis", "values"),
    [
        ({"relative": [-0.2, 0.2], "steps": 5}, [13.6, 15.3, 17.0, 18.7, 20.4]),
        ({"relative": [0.0, 4.0], "steps": 3}, [17.0, 51.0]),  # 85 s is outside the limits [8.5, 68]
        ({"from": 10, "to": 14, "step": 2}, [10.0, 12.0, 14.0]),
        ([20, 20.0, 24], [20.0, 24.0]),
    ],
)
def test_axes_expand_from_the_setpoint_now_within_the_limits(axis: Any, values: list[float]) -> None:
    line = load_line(LINE)
    spec = AdviseConfig.model_validate(
        {"line": str(LINE), "source": "x", "horizon": 60, "objective": {"minimize": "wip_mean"},
         "actions": {"release.interarrival.mean": axis}}
    )  # fmt: skip
    found = axis_values(line, "release.interarrival.mean", spec.actions["release.interarrival.mean"],
                        {"release.interarrival.mean": 17.0}, limits_of(line, spec))  # fmt: skip
    assert found == pytest.approx(values)


def _live(folder: Path, advise: dict[str, Any]) -> Path:
    data = {"line": str(LINE), "source": "http://127.0.0.1:8086/plant",
            "shifts": [{"name": "early", "start": "06:00", "end": "14:00"}], "advise": advise}  # fmt: skip
    path = folder / "live.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


ADVISE = {
    "mode": "auto",
    "every": "30min",
    "horizon": "2h",
    "objective": {"minimize": "lead_time_mean_s"},
    "actions": {"release.interarrival.mean": [17, 20, 23]},
    "apply": {"endpoint": "opc.tcp://127.0.0.1:4840", "security_policy": "Aes256_Sha256_RsaPss",
              "user": "operator", "password": "${PLC_PW}"},
}  # fmt: skip


def test_the_live_block_is_read_with_its_secret(tmp_path: Path) -> None:
    setup = read_live_config(_live(tmp_path, ADVISE), environ={"PLC_PW": "s3"})
    assert setup.config.advise is not None and setup.config.advise.every == 1800
    assert setup.config.advise.apply.password.get_secret_value() == "s3"  # type: ignore[union-attr]
    assert setup.objective is not None and setup.limits is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"apply": None}, "advise.apply: mode auto needs the PLC to write to"),
        ({"mode": "now"}, "advise.mode:"),
        ({"actions": {"release.conwip": [4]}},
         "advise.actions.release.conwip: the line 'released' has no such"),
        ({"limits": {"release.interarrival.mean": {"low": 18}}},
         "advise.actions.release.interarrival.mean: 17.0 is outside the limits [18, 68]"),
        ({"apply": {**ADVISE["apply"], "password": "${NOT_SET_ANYWHERE}"}}, "advise.apply.password:"),
    ],
)  # fmt: skip
def test_a_bad_live_block_is_one_line(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    advise = {key: value for key, value in {**ADVISE, **change}.items() if value is not None}
    with pytest.raises(LiveConfigError) as caught:
        read_live_config(_live(tmp_path, advise), environ={"PLC_PW": "s3"})
    assert message in str(caught.value) and "\n" not in str(caught.value), caught.value
