"""Routes and routing shares from the part events: where each product goes after each station.

Each finished part's event says where the part came from (`from`: a station, or `release` for a
part new to the line) and where it went (`to`: a station, `exit`, or None when scrapped;
`reworked`: sent back for rework). Per product, the good parts that were not sent back give

- the shares: of the product's parts finished at station X, the fraction that went on to Y;
- the route: from the station where the product enters the line, each next station is where the
  parts went that came from the station before, so a route that visits a station twice, from two
  different stations, is still found. It is deterministic when every step has one destination.
  A part that joins an assembly as a component has no event there (the assembly's event is the
  base part's), so a component's route ends at the assembly, as in a line file.

The twin routes every product the same way every time (docs/networks.md); shares that are not
0 or 1 are reported, never written. A route is written into the calibrated line only where it
differs from the way the prior line sends the product.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from foundation.errors import InputError
from twin.calibration.records import FROM_RELEASE, TO_EXIT, StationRecord


@dataclass
class RouteEstimate:
    """What the part events say of one product's way through the line."""

    product: str
    entries: dict[str, int] = field(default_factory=dict)  # station -> parts that entered the line there
    moves: dict[str, int] = field(default_factory=dict)  # station -> good parts finished there, not reworked
    shares: dict[str, dict[str, float]] = field(default_factory=dict)  # station -> destination -> share
    route: list[str] | None = None  # the deterministic route, or None (then `reason`)
    reason: str | None = None
    written: bool = False  # written into the calibrated line's `routes`

    @property
    def parts(self) -> int:
        return sum(self.entries.values())

    @property
    def entry(self) -> str | None:
        """The station where most of the product's parts entered the line."""
        return max(self.entries, key=self.entries.__getitem__) if self.entries else None

    def summary(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "parts": self.parts,
            "entries": self.entries,
            "route": self.route,
            "reason": self.reason,
            "written": self.written,
            "shares": self.shares,
            "moves": self.moves,
        }


def routed_records(records: dict[str, StationRecord]) -> list[StationRecord]:
    """The records whose part events say where each part came from and went."""
    return [r for r in records.values() if r.came_from and len(r.came_from) == len(r.scrapped)]


def estimate_routes(records: dict[str, StationRecord]) -> dict[str, RouteEstimate]:
    """Per product seen in the events: its entries, shares and (deterministic) route."""
    entries: dict[str, Counter[str]] = defaultdict(Counter)
    onward: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    steps: dict[str, dict[tuple[str, str], Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for record in routed_records(records):
        at = record.name
        for product, came, went, scrapped, reworked in zip(
            record.products, record.came_from, record.goes_to, record.scrapped, record.reworked, strict=True
        ):
            if came == FROM_RELEASE:
                entries[product][at] += 1
            if scrapped or reworked or went is None:
                continue
            onward[product][at][went] += 1
            steps[product][came, at][went] += 1
    estimates = {}
    for product in sorted(set(entries) | set(onward)):
        estimate = RouteEstimate(product, entries=dict(entries[product]))
        for at, destinations in onward[product].items():
            total = sum(destinations.values())
            estimate.moves[at] = total
            estimate.shares[at] = {to: count / total for to, count in destinations.most_common()}
        estimate.route, estimate.reason = _follow(estimate.entries, steps[product])
        estimates[product] = estimate
    return estimates


def _follow(
    entries: dict[str, int], steps: dict[tuple[str, str], Counter[str]]
) -> tuple[list[str] | None, str | None]:
    """The route from the one entry, step by step, or None and why there is none."""
    if not entries:
        return None, "no part of it entered the line in the window (no event from `release`)"
    if len(entries) > 1:
        return None, "it entered the line at " + ", ".join(f"{s} ({n})" for s, n in entries.items())
    (at,) = entries
    came = FROM_RELEASE
    route = [at]
    seen = {(came, at)}
    while True:
        destinations = steps.get((came, at))
        if not destinations:  # scrapped, still in the line, or joined an assembly as a component
            return route, None
        if len(destinations) > 1:
            went = ", ".join(f"{to} {count}" for to, count in destinations.most_common())
            return None, f"from {at} (coming from {came}) its parts went to {went}"
        (to,) = destinations
        if to == TO_EXIT:
            return route, None
        came, at = at, to
        if (came, at) in seen:
            return None, f"it passes from {came} to {at} more than once: the events cannot order its visits"
        seen.add((came, at))
        route.append(at)


def prior_route(line_data: dict[str, Any], product: str) -> list[str] | None:
    """The stations the prior line sends `product` through, or None when it does not say one way
    (a product that several branch heads make)."""
    from twin.line import line_from_dict
    from twin.topology import EXIT, Topology

    line = line_from_dict(line_data)
    routes = line.routes or {}
    if product in routes:
        return list(routes[product])
    topology = Topology(line)
    heads = [head for head, pinned in topology.pinned.items() if pinned == product]
    if not heads:
        makers = [head for head in topology.heads if head not in topology.pinned]
        if len(makers) != 1:
            return None
        heads = makers
    at, path = heads[0], []
    while True:
        path.append(topology.names[at])
        after = topology.downstream[at]
        if after == EXIT or topology.input_slot(after, at) != 0:  # leaves, or joins as a component
            if after != EXIT:
                path.append(topology.names[after])
            return path
        at = after


def calibrate_routes(
    line_data: dict[str, Any], estimates: dict[str, RouteEstimate], least_parts: int
) -> list[str]:
    """Write into `line_data` the observed routes that differ from the prior's; return the warnings.

    A product needs `least_parts` parts that entered the line; a route the line then cannot hold
    (the checks of docs/networks.md) is left out with a warning, as are shares that are not one way.
    """
    warnings = []
    written: dict[str, list[str]] = {}
    for product, estimate in estimates.items():
        if product not in {p["name"] for p in line_data.get("products") or [{"name": "default"}]}:
            warnings.append(f"routes: product {product!r} is not in the line; its events are left out")
            continue
        if estimate.parts < least_parts:
            warnings.append(
                f"routes: only {estimate.parts} parts of {product} entered the line (< {least_parts});"
                " keeping its prior route"
            )
            continue
        if estimate.route is None:
            warnings.append(f"routes: {product} has no one route ({estimate.reason}); keeping the prior")
            continue
        if estimate.route != prior_route(line_data, product):
            written[product] = estimate.route
    if not written:
        return warnings
    before = line_data.get("routes")
    line_data["routes"] = {**(before or {}), **written}
    try:
        from twin.line import line_from_dict

        line_from_dict(line_data, "<calibrated>")
    except InputError as error:
        if before is None:
            del line_data["routes"]
        else:
            line_data["routes"] = before
        warnings.append(f"routes: the observed routes do not fit the line ({error}); keeping the prior")
        return warnings
    for product in written:
        estimates[product].written = True
    return warnings
