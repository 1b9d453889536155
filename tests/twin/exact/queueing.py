"""Closed-form queueing results: M/M/1, M/M/c (Erlang C) and a Jackson tandem of M/M/1 stations.

All rates are per unit time (the tests use seconds); every result is the long-run
steady state and needs a utilisation below 1.

    >>> mm1(arrival_rate=0.5, service_rate=1.0).mean_time_in_system
    2.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueMeasures:
    """Steady-state measures of one station with Poisson arrivals and exponential service."""

    arrival_rate: float
    utilization: float  # per server: lambda / (c mu)
    wait_probability: float
    mean_wait: float  # in the queue, before service
    mean_time_in_system: float
    mean_number_in_system: float

    @property
    def mean_number_waiting(self) -> float:
        return self.arrival_rate * self.mean_wait


def _check_stable(arrival_rate: float, service_rate: float, servers: int) -> float:
    if arrival_rate <= 0 or service_rate <= 0 or servers < 1:
        raise ValueError("rates must be > 0 and servers >= 1")
    rho = arrival_rate / (servers * service_rate)
    if rho >= 1:
        raise ValueError(f"unstable queue: utilisation {rho:g} >= 1")
    return rho


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B: probability that all `servers` are busy in M/M/c/c (recursion on c)."""
    blocking = 1.0
    for c in range(1, servers + 1):
        blocking = offered_load * blocking / (c + offered_load * blocking)
    return blocking


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: probability that an arrival waits in M/M/c, offered load a = lambda / mu < c."""
    if not 0 < offered_load < servers:
        raise ValueError(f"offered load must be in (0, {servers}), got {offered_load:g}")
    terms = sum(offered_load**k / math.factorial(k) for k in range(servers))
    top = offered_load**servers / math.factorial(servers) * servers / (servers - offered_load)
    return top / (terms + top)


def mmc(arrival_rate: float, service_rate: float, servers: int) -> QueueMeasures:
    """M/M/c: Poisson arrivals, `servers` identical exponential servers, one unlimited FIFO queue."""
    rho = _check_stable(arrival_rate, service_rate, servers)
    wait = erlang_c(servers, arrival_rate / service_rate)
    mean_wait = wait / (servers * service_rate - arrival_rate)
    time_in_system = mean_wait + 1.0 / service_rate
    return QueueMeasures(
        arrival_rate=arrival_rate,
        utilization=rho,
        wait_probability=wait,
        mean_wait=mean_wait,
        mean_time_in_system=time_in_system,
        mean_number_in_system=arrival_rate * time_in_system,
    )


def mm1(arrival_rate: float, service_rate: float) -> QueueMeasures:
    """M/M/1: W = 1 / (mu - lambda), L = rho / (1 - rho)."""
    rho = _check_stable(arrival_rate, service_rate, 1)
    return QueueMeasures(
        arrival_rate=arrival_rate,
        utilization=rho,
        wait_probability=rho,
        mean_wait=rho / (service_rate - arrival_rate),
        mean_time_in_system=1.0 / (service_rate - arrival_rate),
        mean_number_in_system=rho / (1.0 - rho),
    )


@dataclass(frozen=True)
class TandemMeasures:
    """A Jackson tandem: every station behaves as an independent M/M/1 with the same arrival rate."""

    stations: tuple[QueueMeasures, ...]

    @property
    def mean_sojourn(self) -> float:
        return sum(station.mean_time_in_system for station in self.stations)

    @property
    def mean_number(self) -> float:
        return sum(station.mean_number_in_system for station in self.stations)


def jackson_tandem(arrival_rate: float, service_rates: tuple[float, ...]) -> TandemMeasures:
    """M/M/1 stations in series with unlimited buffers fed by Poisson arrivals (Burke, Jackson)."""
    return TandemMeasures(stations=tuple(mm1(arrival_rate, mu) for mu in service_rates))


@dataclass(frozen=True)
class RepairmanMeasures:
    """The machine-repairman model (M/M/c//N): long-run shares of the N machines' time."""

    machines: int
    technicians: int
    probabilities: tuple[float, ...]  # of n machines failed, n = 0 .. N

    @property
    def working(self) -> float:
        return sum((self.machines - n) * p for n, p in enumerate(self.probabilities)) / self.machines

    @property
    def under_repair(self) -> float:
        return sum(min(n, self.technicians) * p for n, p in enumerate(self.probabilities)) / self.machines

    @property
    def waiting(self) -> float:
        c = self.technicians
        return sum(max(n - c, 0) * p for n, p in enumerate(self.probabilities)) / self.machines


def machine_repairman(
    machines: int, technicians: int, failure_rate: float, repair_rate: float
) -> RepairmanMeasures:
    """N machines, each failing at `failure_rate` while it works, c technicians repairing at
    `repair_rate` each, first come first served: the finite-source queue M/M/c//N.

    p_n = p_0 C(N, n) r^n for n <= c and p_0 C(N, n) n! / (c! c^(n-c)) r^n for n > c, with
    r = failure_rate / repair_rate (Kleinrock, Queueing Systems I, section 3.10).
    """
    if machines < 1 or not 1 <= technicians <= machines or failure_rate <= 0 or repair_rate <= 0:
        raise ValueError("need 1 <= technicians <= machines and rates > 0")
    r = failure_rate / repair_rate
    c = technicians
    weights = []
    for n in range(machines + 1):
        ways = math.comb(machines, n)
        if n > c:
            ways *= math.factorial(n) / (math.factorial(c) * c ** (n - c))
        weights.append(ways * r**n)
    total = sum(weights)
    return RepairmanMeasures(machines, technicians, tuple(w / total for w in weights))
