"""The flow graph of a line that is more than one chain: which station feeds which, and where a part goes.

A station's inputs are the stations listed in its `inputs`; a station with its own `release`
(the head of a feeder branch) and the first station (the line's release) have none; any other
station is fed by the station before it in the file. Each station feeds at most one station, its
downstream; a station that feeds none is an exit of the line. A station with two or more inputs
is an assembly: it holds one buffer per input.

Products with a `route` go from station to station in the route's order (skipping the rest) and
leave after its last station; the others follow the graph from the head that released them. A
part that comes to an assembly goes into the buffer of the input whose branch (the input and
everything upstream of it) holds the station it comes from.

    >>> topology = Topology(load_line("simulations/lines/assembly.yaml"))
    >>> topology.downstream
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foundation.errors import FieldError

if TYPE_CHECKING:
    from twin.line import Line

EXIT = -1  # the destination of a part that leaves the line


class Topology:
    """The line's stations as a graph, by index, checked as it is built (a FieldError names the field)."""

    def __init__(self, line: Line) -> None:
        from twin.line import ConwipRelease

        stations = line.stations
        self.names = [station.name for station in stations]
        index = {name: i for i, name in enumerate(self.names)}
        self.index = index
        count = len(stations)

        # -- inputs and downstream ------------------------------------------------------------
        self.inputs: list[list[int]] = []
        fed_by: dict[int, int] = {}
        for i, station in enumerate(stations):
            if i == 0 and station.release is not None:
                raise FieldError(
                    "stations[0].release",
                    "the first station takes the line's release (set `release` at line level)",
                )
            if i == 0 and station.inputs is not None:
                raise FieldError(
                    "stations[0].inputs",
                    "the first station takes the line's release and has no inputs"
                    " (list the stations in flow order, feeders first)",
                )
            if station.inputs is not None:
                inputs = []
                for k, name in enumerate(station.inputs):
                    if name not in index:
                        raise FieldError(
                            f"stations[{i}].inputs[{k}]",
                            f"unknown station {name!r} (stations: {', '.join(self.names)})",
                        )
                    if name == station.name:
                        raise FieldError(f"stations[{i}].inputs[{k}]", "a station cannot feed itself")
                    if index[name] in inputs:
                        raise FieldError(f"stations[{i}].inputs[{k}]", f"{name!r} is listed twice")
                    inputs.append(index[name])
                if station.release is not None:
                    raise FieldError(f"stations[{i}].inputs", "a branch head (with `release`) has no inputs")
            elif station.release is not None or i == 0:
                inputs = []
            else:
                inputs = [i - 1]
            self.inputs.append(inputs)
        for i, inputs in enumerate(self.inputs):
            for source in inputs:
                if source in fed_by:
                    self._fed_twice(line, source, fed_by[source], i)
                fed_by[source] = i
        self.downstream = [fed_by.get(i, EXIT) for i in range(count)]
        self._check_cycles(line)
        self.assembly = [len(inputs) >= 2 for inputs in self.inputs]
        for i, station in enumerate(stations):
            if self.assembly[i] and station.transport is not None:
                raise FieldError(
                    f"stations[{i}].transport",
                    "a transport into an assembly can fill with one input's parts while the assembly waits"
                    " for another's, and stop the line; put the transport before the inputs' last stations",
                )
        self.heads = [i for i in range(count) if not self.inputs[i]]
        # each station with the stations upstream of it
        self.upstream: list[set[int]] = [self._upstream(i) for i in range(count)]

        # -- products: which head makes which ------------------------------------------------
        product_names = [product.name for product in line.products]
        self.pinned: dict[int, str] = {}  # branch head -> the product it makes
        for i, station in enumerate(stations):
            if station.product is not None:
                if station.release is None:
                    raise FieldError(
                        f"stations[{i}].product",
                        "only a branch head (a station with its own `release`) makes a product;"
                        f" {station.name!r} has none",
                    )
                if station.product not in product_names:
                    raise FieldError(
                        f"stations[{i}].product",
                        f"unknown product {station.product!r} (products: {', '.join(product_names)})",
                    )
                self.pinned[i] = station.product
            if isinstance(station.release, ConwipRelease):
                raise FieldError(
                    f"stations[{i}].release",
                    "a branch's release is 'saturated' or {interarrival: DIST};"
                    " {conwip: N} is only the line's release (it counts every part in the line)",
                )
        pinned_products = set(self.pinned.values())
        self.line_products = [name for name in product_names if name not in pinned_products]
        if not self.line_products:
            raise FieldError(
                "products", "every product is made by a branch head: the line's release has none left"
            )

        # -- routes ---------------------------------------------------------------------------
        self.routes: dict[str, list[int]] = {}
        if line.routes is not None:
            self._check_routes(line, product_names)
        self._check_rework(line)

    # -- the graph ----------------------------------------------------------------------------
    def _check_cycles(self, line: Line) -> None:
        for start in range(len(self.names)):
            path = [start]
            at = self.downstream[start]
            while at != EXIT:
                if at in path:
                    cycle = path[path.index(at) :]
                    # a cycle holds a station with `inputs`: the implicit feed only runs down the file
                    explicit = next(i for i in cycle if line.stations[i].inputs is not None)
                    shown = " -> ".join(self.names[i] for i in [*cycle, at])
                    raise FieldError(
                        f"stations[{explicit}].inputs",
                        f"the stations feed each other in a cycle ({shown}); `rework` sends a part back",
                    )
                path.append(at)
                at = self.downstream[at]

    def _fed_twice(self, line: Line, source: int, first: int, second: int) -> None:
        """Refuse a station that feeds two: name the one that takes it implicitly, with the cure."""
        name, names = self.names[source], self.names
        for taker, other in ((first, second), (second, first)):
            if line.stations[taker].inputs is None:
                raise FieldError(
                    f"stations[{taker}]",
                    f"{names[taker]!r} is fed by {name!r}, the station before it in the file, and"
                    f" {names[other]!r} lists {name!r} in its `inputs` too: give {names[taker]!r} its"
                    " own `release` (a branch head) or `inputs`",
                )
        raise FieldError(
            f"stations[{second}].inputs",
            f"{name!r} already feeds {names[first]!r}: a station feeds one station (an assembly joins"
            " several)",
        )

    def _upstream(self, station: int) -> set[int]:
        found = {station}
        todo = [station]
        while todo:
            for source in self.inputs[todo.pop()]:
                if source not in found:
                    found.add(source)
                    todo.append(source)
        return found

    def input_slot(self, station: int, came_from: int | None) -> int:
        """Which of `station`'s buffers a part coming from `came_from` enters (None: from the release)."""
        if not self.assembly[station] or came_from is None:
            return 0
        for slot, source in enumerate(self.inputs[station]):
            if came_from in self.upstream[source]:
                return slot
        raise ValueError(f"{self.names[came_from]} feeds none of {self.names[station]}'s inputs")

    def buffers_of(self, station: int) -> int:
        """How many buffers stand in front of `station`: one per input of an assembly, else one."""
        return len(self.inputs[station]) if self.assembly[station] else 1

    # -- the checks of routes and rework --------------------------------------------------------
    def _check_routes(self, line: Line, product_names: list[str]) -> None:
        assert line.routes is not None
        index = self.index
        saturated = line.release == "saturated"
        head_of = {product: head for head, product in self.pinned.items()}
        branch_heads = [i for i in self.heads if i != 0]
        for head in branch_heads:
            if head not in self.pinned:
                raise FieldError(
                    f"stations[{head}].product", "with routes, every branch head names the product it makes"
                )
        for product, names in line.routes.items():
            where = f"routes.{product}"
            if product not in product_names:
                raise FieldError(where, f"unknown product (products: {', '.join(product_names)})")
            if not names:
                raise FieldError(where, "a route names at least one station")
            route = []
            for k, name in enumerate(names):
                if name not in index:
                    raise FieldError(
                        f"{where}[{k}]", f"unknown station {name!r} (stations: {', '.join(self.names)})"
                    )
                if route and route[-1] == index[name]:
                    raise FieldError(f"{where}[{k}]", f"{name!r} twice in a row (`rework` sends a part back)")
                route.append(index[name])
            first = route[0]
            if product in head_of and first != head_of[product]:
                head = self.names[head_of[product]]
                raise FieldError(
                    f"{where}[0]", f"{product!r} is made at the branch head {head!r}: its route starts there"
                )
            if product not in head_of and saturated and first != 0:
                raise FieldError(
                    f"{where}[0]",
                    f"with a saturated release every route starts at the first station {self.names[0]!r}",
                )
            for k, station in enumerate(route):
                if not self.assembly[station]:
                    continue
                name = self.names[station]
                if k == 0:
                    raise FieldError(f"{where}[0]", f"a route cannot start at the assembly {name!r}")
                previous = route[k - 1]
                slots = [
                    slot
                    for slot, source in enumerate(self.inputs[station])
                    if previous in self.upstream[source]
                ]
                if not slots:
                    inputs = ", ".join(self.names[s] for s in self.inputs[station])
                    raise FieldError(
                        f"{where}[{k}]",
                        f"{name!r} is an assembly; the route comes to it from {self.names[previous]!r},"
                        f" which is in none of its inputs' branches ({inputs})",
                    )
                if slots[0] != 0 and k != len(route) - 1:
                    raise FieldError(
                        f"{where}[{k}]",
                        f"{product!r} joins {name!r} as a component (not its first input):"
                        " its route ends there",
                    )
            self.routes[product] = route

    def _check_rework(self, line: Line) -> None:
        unrouted = [p.name for p in line.products if p.name not in self.routes]
        self.rework_to: list[int | None] = []
        for i, station in enumerate(line.stations):
            rework = station.rework
            if rework is None:
                self.rework_to.append(None)
                continue
            where = f"stations[{i}].rework.to"
            if rework.to not in self.index:
                raise FieldError(where, f"unknown station {rework.to!r} (stations: {', '.join(self.names)})")
            to = self.index[rework.to]
            if self.assembly[to]:
                raise FieldError(where, f"{rework.to!r} is an assembly: a part cannot go back into it")
            if unrouted:
                if to not in self.upstream[i]:
                    raise FieldError(where, f"{rework.to!r} is not {station.name!r} itself or upstream of it")
                path, at = [], to
                while at != i:
                    at = self.downstream[at]
                    path.append(at)
                self._no_assembly_between(where, path, rework.to)
            for product, route in self.routes.items():
                for k, visited in enumerate(route):
                    if visited != i:
                        continue
                    before = route[: k + 1]
                    if to not in before:
                        raise FieldError(
                            f"routes.{product}",
                            f"visits {station.name!r}, which sends parts back to {rework.to!r},"
                            " not on the route before it",
                        )
                    back = len(before) - 1 - before[::-1].index(to)
                    self._no_assembly_between(f"routes.{product}", route[back + 1 : k + 1], rework.to)
            self.rework_to.append(to)

    def _no_assembly_between(self, where: str, path: list[int], to: str) -> None:
        for station in path:
            if self.assembly[station]:
                raise FieldError(
                    where, f"a part sent back to {to!r} would pass the assembly {self.names[station]!r} again"
                )


def check_network(line: Line) -> None:
    """Raise a FieldError if the line's graph, routes or rework cannot hold together, or a station
    has per-product cycle times without one for a product that is processed there."""
    from twin.network_state import Places

    places = Places(line)  # builds (and so checks) the line's Topology
    for i, station in enumerate(line.stations):
        if isinstance(station.cycle_time, dict):
            for product in places.machine[i]:
                if product not in station.cycle_time:
                    raise FieldError(
                        f"stations[{i}].cycle_time",
                        f"no cycle time for product {product!r}, which is processed at {station.name!r}",
                    )
