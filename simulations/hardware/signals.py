"""Process signals of a machine: spindle speed, temperature, power, vibration, energy.

A signal follows the level of the machine's current state (spindle at speed while
working, idle power while starved, cooling down while stopped) through a first-order
lag, and is measured with Gaussian noise whose spread may depend on the state too.
Between two samples the lag is solved exactly, piecewise at every state change, so
the integral of power (the energy meter) is exact whatever the sampling rate.

A signal marked `line_power` on a station whose line file gives its `power:` follows the
station's power instead of its own levels: the line's kW in the state each machine shows,
summed over the machines (`power`, set by the runtime at every change). Its integral is then
the twin's energy, Σ power × time in state, up to the lag's `tau × (x(t) - x(0))` (the lag
delays the meter, it does not change what it counts) and exact with `tau: 0`.

All signals of a station draw their noise from that station's own numpy Generator,
seeded from the run's seed and the station's name: no global random state, and one
station's signals do not change when another station is added.
"""

from __future__ import annotations

import zlib

import numpy as np

from simulations.hardware.config import SignalSpec

_SIGNAL_PURPOSE = 1000  # far from twin.streams' purposes: the twin's own streams stay untouched


def station_generator(seed: int, station: str, group: str) -> np.random.Generator:
    """The random stream of `station`'s signal `group` ("signals" or "sensors") in the run `seed`."""
    key = (zlib.crc32(station.encode()), _SIGNAL_PURPOSE, 0, zlib.crc32(group.encode()))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


class SignalBank:
    """The signals of one station that share a sampling rate, computed together.

    `advance(now, state)` brings the noise-free value up to `now` under the state (and
    `power`) that held until then (call it at every change); `sample(now, state)` advances
    and returns the measured values. With `power` (kW) the signals marked `line_power`
    follow it, unscaled, instead of their levels.
    """

    def __init__(
        self,
        specs: list[SignalSpec],
        rng: np.random.Generator,
        state: int,
        now: float = 0.0,
        *,
        power: float | None = None,
    ) -> None:
        if not specs:
            raise ValueError("a signal bank needs at least one signal")
        self.specs = specs
        self.names = [spec.name for spec in specs]
        self.rng = rng
        spread = np.array([spec.spread for spec in specs])
        scale = 1.0 + spread * rng.standard_normal(len(specs))
        self.levels = np.array([spec.level_table() for spec in specs]) * scale[:, None]
        self.noise = np.array([spec.noise_table() for spec in specs])
        self.tau = np.array([spec.tau for spec in specs])
        self.integrate = np.array([spec.integrate for spec in specs])
        self.any_integral = bool(self.integrate.any())
        self.floor = np.array([-np.inf if spec.floor is None else spec.floor for spec in specs])
        self.follow = np.array([spec.line_power and power is not None for spec in specs])
        self.any_follow = bool(self.follow.any())
        self.power = 0.0 if power is None else float(power)
        self.x = self._target(state).copy()
        self.total = np.zeros(len(specs))
        self.since = now

    def advance(self, now: float, state: int) -> None:
        """Let the signals evolve from the last call to `now` with the machine in `state`."""
        dt = now - self.since
        if dt <= 0:
            return
        self.since = now
        target = self._target(state)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            decay = np.where(self.tau > 0, np.exp(-dt / self.tau), 0.0)
        gap = self.x - target
        if self.any_integral:
            # exact integral of target + gap * exp(-s/tau) over [0, dt], per hour (kW -> kWh)
            transient = np.where(self.tau > 0, gap * self.tau * (1.0 - decay), 0.0)
            self.total += (target * dt + transient) / 3600.0
        self.x = target + gap * decay

    def _target(self, state: int) -> np.ndarray:
        """The level each signal tends to in `state` (the station's power for those that follow it)."""
        if self.any_follow:
            return np.where(self.follow, self.power, self.levels[:, state])
        return self.levels[:, state]

    def sample(self, now: float, state: int) -> np.ndarray:
        """The measured values at `now` (state: the machine's state since the last call)."""
        self.advance(now, state)
        values = self.x + self.noise[:, state] * self.rng.standard_normal(self.x.shape[0])
        values = np.maximum(values, self.floor)
        if self.any_integral:
            values = np.where(self.integrate, self.total, values)
        return values
