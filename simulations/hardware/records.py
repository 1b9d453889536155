"""What the virtual PLCs of a line runtime published, as the twin's calibration records.

The same records a historian gives back after `fabbrica connect` recorded the PLCs (times in
line seconds), taken straight from the runtime's timelines: for checks and benchmarks of
calibration and validation that need the PLCs' view without the connector in between.
"""

from __future__ import annotations

from simulations.hardware.runtime import RELEASE_COUNTER, LineRuntime
from twin.calibration.records import StationRecord
from twin.station import STATE_NAMES


def plc_records(runtime: LineRuntime, counters: bool) -> dict[str, StationRecord]:
    """What the runtime's PLCs published, as a historian gives it back (times in line seconds)."""
    records = {}
    for station in runtime.stations:
        record = StationRecord(station.name)
        record.state_times = [t for t, _ in station.states.entries]
        record.states = [STATE_NAMES[code] for _, code in station.states.entries]
        for k, variable in enumerate(station.machine_variables):
            machine = StationRecord(f"{station.name}[{k}]")
            machine.state_times = [t for t, _ in station.values[variable].entries]
            machine.states = [STATE_NAMES[code] for _, code in station.values[variable].entries]
            record.machines.append(machine)
        for event in station.parts:
            record.part_times.append(event["t"])
            record.cycle_times.append(event["cycle_time_s"])
            record.scrapped.append(event["scrapped"])
            record.products.append(event["product"])
            record.came_from.append(event["from"])
            record.goes_to.append(event["to"])
            record.reworked.append(event["reworked"])
        record.occupancy_times = [t for t, _ in station.values["Occupancy"].entries]
        record.occupancy = [float(v) for _, v in station.values["Occupancy"].entries]
        if counters:
            record.occupancy_seconds_times = [t for t, _ in station.values["OccupancySeconds"].entries]
            record.occupancy_seconds = [v for _, v in station.values["OccupancySeconds"].entries]
        if RELEASE_COUNTER in station.values:
            counts = station.values[RELEASE_COUNTER].entries
            record.release_times = [
                t for (t, n), (_, m) in zip(counts[1:], counts, strict=False) for _ in range(n - m)
            ]
        records[station.name] = record
    return records
