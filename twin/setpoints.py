"""The line's setpoints: what an operator, or the twin's advice, may change while the line runs.

A setpoint is named by its path, the same in an advice's action, in the truth file and in the
docs, and is shown on the virtual PLC's `Objects/<Line>/Release` object:

| path | PLC variable | line model (`LineModel`) | applies to |
| --- | --- | --- | --- |
| `release.interarrival.mean` | `InterarrivalMean` (s) | `set_interarrival_mean` | interarrival release |
| `release.conwip` | `ConwipLimit` | `set_conwip_limit` | CONWIP release |
| `release.hold` | `Hold` | `hold_release` | either |

Each applies from the instant it is written (`twin.release.ReleaseControl`). `Limits` bound what
may be written; a value outside them is refused with one line naming the path and the bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twin.line import ConwipRelease, InterarrivalRelease, Line

if TYPE_CHECKING:
    from twin.engine import LineModel


@dataclass(frozen=True)
class Setpoint:
    """One setpoint: its path, PLC variable, type, and how the line model applies it."""

    path: str
    variable: str
    kind: type[float] | type[int] | type[bool]
    unit: str
    apply: Callable[[LineModel, Any], None]
    description: str


SETPOINTS: dict[str, Setpoint] = {
    setpoint.path: setpoint
    for setpoint in (
        Setpoint(
            "release.interarrival.mean",
            "InterarrivalMean",
            float,
            "s",
            lambda model, value: model.set_interarrival_mean(float(value)),
            "mean time between orders released into the line",
        ),
        Setpoint(
            "release.conwip",
            "ConwipLimit",
            int,
            "parts",
            lambda model, value: model.set_conwip_limit(int(value)),
            "the most parts in the line at once (CONWIP)",
        ),
        Setpoint(
            "release.hold",
            "Hold",
            bool,
            "",
            lambda model, value: model.hold_release(bool(value)),
            "true: no order enters the line",
        ),
    )
}


class SetpointError(ValueError):
    """A setpoint the line does not have, of the wrong type, or outside its limits: one line."""


def available(line: Line) -> list[str]:
    """The setpoint paths `line` has (by its release)."""
    if isinstance(line.release, InterarrivalRelease):
        return ["release.interarrival.mean", "release.hold"]
    if isinstance(line.release, ConwipRelease):
        return ["release.conwip", "release.hold"]
    return []


def initial(line: Line) -> dict[str, Any]:
    """The setpoints as the line file sets them."""
    values: dict[str, Any] = {}
    if isinstance(line.release, InterarrivalRelease):
        values["release.interarrival.mean"] = float(line.release.interarrival.mean)
    if isinstance(line.release, ConwipRelease):
        values["release.conwip"] = int(line.release.conwip)
    if values:
        values["release.hold"] = False
    return values


@dataclass(frozen=True)
class Limits:
    """Engineering limits per setpoint path: (low, high), both included; None: unbounded."""

    bounds: Mapping[str, tuple[float | None, float | None]]

    @classmethod
    def default(cls, line: Line) -> Limits:
        """Half to four times the line file's mean between orders; 1 to four times its CONWIP limit."""
        bounds: dict[str, tuple[float | None, float | None]] = {}
        start = initial(line)
        if "release.interarrival.mean" in start:
            mean = start["release.interarrival.mean"]
            bounds["release.interarrival.mean"] = (mean / 2, mean * 4)
        if "release.conwip" in start:
            bounds["release.conwip"] = (1, start["release.conwip"] * 4)
        return cls(bounds)

    def check(self, path: str, value: Any) -> None:
        low, high = self.bounds.get(path, (None, None))
        if (low is not None and value < low) or (high is not None and value > high):
            shown_low = "-inf" if low is None else f"{low:g}"
            shown_high = "inf" if high is None else f"{high:g}"
            raise SetpointError(f"{path}: {value!r} is outside the limits [{shown_low}, {shown_high}]")


def parse(line: Line, path: str, value: Any, limits: Limits | None = None) -> Any:
    """`value` as the setpoint `path` takes it, checked against the line and `limits`."""
    setpoint = SETPOINTS.get(path)
    if setpoint is None:
        raise SetpointError(f"{path}: unknown setpoint (setpoints: {', '.join(SETPOINTS)})")
    if path not in available(line):
        release = line.release if isinstance(line.release, str) else type(line.release).__name__
        raise SetpointError(f"{path}: the line's release ({release}) has no such setpoint")
    if setpoint.kind is bool:
        if not isinstance(value, bool):
            raise SetpointError(f"{path}: must be true or false, got {value!r}")
        parsed: Any = value
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise SetpointError(f"{path}: must be a number, got {value!r}")
    elif setpoint.kind is int:
        if value != int(value):
            raise SetpointError(f"{path}: must be a whole number, got {value!r}")
        parsed = int(value)
        if parsed < 1:
            raise SetpointError(f"{path}: must be >= 1, got {value!r}")
    else:
        parsed = float(value)
        if not parsed > 0 or parsed == float("inf"):
            raise SetpointError(f"{path}: must be > 0 and finite, got {value!r}")
    if limits is not None and setpoint.kind is not bool:
        limits.check(path, parsed)
    return parsed


def apply(model: LineModel, setpoints: Mapping[str, Any]) -> None:
    """Apply each setpoint to the running line model now (checked against the line, not limits)."""
    for path, value in setpoints.items():
        SETPOINTS[path].apply(model, parse(model.line, path, value))
