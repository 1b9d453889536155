"""`fabbrica twin validate`'s tables show energy per good part and the state shares as the validation
checked them (issue 18)."""

from __future__ import annotations

import pytest

from fabbrica.calibration_commands import _print_validation
from twin.station import REPORTED_STATES

SHARES = dict.fromkeys(REPORTED_STATES, 0.1)
RECORD = {
    "throughput": {"observed": 40.0, "twin_mean": 40.5, "twin_ci95": 1.5, "rel_error": 0.0125},
    "energy": {
        "observed_kwh": 120.0,
        "basis": "stations",
        "good_parts": 80,
        "observed_per_good_part_kwh": 1.5,
        "twin_per_good_part_kwh": 1.95,
        "twin_ci95": 0.05,
        "rel_error": 0.3,
    },
    "stations": {
        "press": {
            "twin": SHARES,
            "observed": {**SHARES, "waiting_repair": 0.3},
            "throughput": {"twin_mean": 40.5, "twin_ci95": 1.5, "observed": 40.0},
            "energy": {
                "observed_kwh": 100.0,
                "basis": "energy",
                "good_parts": 80,
                "observed_per_good_part_kwh": 1.25,
                "twin_per_good_part_kwh": 1.625,
                "twin_ci95": 0.04,
                "rel_error": 0.3,
            },
        },
        "trim": {
            "twin": SHARES,
            "observed": SHARES,
            "energy": {
                "observed_kwh": 20.0,
                "basis": "Power",
                "good_parts": 0,
                "twin_per_good_part_kwh": 0.3,
            },
        },
        "pack": {"twin": SHARES, "observed": SHARES},
    },
    "verdict": "invalid",
    "tolerance": 0.05,
    "replications": 5,
    "window_s": 7200.0,
    "checks": {
        "throughput": {"rel_error": 0.0125, "ok": True},
        "energy_per_good_part": {"rel_error": 0.3, "ok": False},
        "press.energy_per_good_part": {"rel_error": 0.3, "ok": False},
        "press.waiting_repair": {"rel_error": 0.67, "ok": False},
        "trim.waiting_repair": {"rel_error": 0.0, "ok": True},
    },
}


def _rows(text: str, title: str) -> dict[str, list[str]]:
    """The rows of the table titled `title`, by their first cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if title in line)
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if line.startswith("└"):
            break
        cells = [cell.strip() for cell in line.strip("│┃ ").replace("┃", "│").split("│")]
        if len(cells) > 1 and cells[0]:
            rows[cells[0]] = cells[1:]
    return rows


def test_energy_per_good_part_is_shown_observed_against_the_twin(capsys: pytest.CaptureFixture[str]) -> None:
    _print_validation(RECORD)
    out = capsys.readouterr().out
    assert (
        "energy per good part (every meter's kWh over the parts out): observed 1.5 kWh, "
        "twin 1.95 ± 0.05 kWh, relative error 30.0% (outside)" in out
    )
    assert "state shares outside: press waiting_repair\n" in out  # trim's share was checked and is ok
    rows = _rows(out, "energy per good part (kWh)")
    assert rows["station"] == ["from", "observed", "twin", "checked"]
    assert rows["press"] == ["meter", "1.25", "1.625 ± 0.04", "outside"]
    assert rows["trim"] == ["Power samples", "-", "0.3", "-"]  # no good part: shown, not checked
    assert "pack" not in rows  # no meter


def test_without_meters_there_is_no_energy_table(capsys: pytest.CaptureFixture[str]) -> None:
    record = {**RECORD, "stations": {"pack": RECORD["stations"]["pack"]}}
    del record["energy"]
    _print_validation(record)
    out = capsys.readouterr().out
    assert "energy per good part" not in out and "outside" not in out and "verdict: invalid" in out
