"""Each sink round-trips points through a real server: InfluxDB 1.x (read back with InfluxQL),
VictoriaMetrics through InfluxDB's v2 write API (read back with its export API), and the
embedded DuckDB historian (read back with the twin's query interface)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd

from connectors.common.points import Point, encode
from connectors.sinks.config import EmbeddedSink, InfluxDB1Sink, InfluxDB2Sink
from connectors.sinks.embedded import Embedded, Historian
from connectors.sinks.influxdb1 import InfluxDB1
from connectors.sinks.influxdb1 import query as influx_query
from connectors.sinks.influxdb2 import InfluxDB2

from .conftest import influx_rows, victoria_export


def _points(base: int, station: str = "Press") -> list[Point]:
    points = []
    for index in range(50):
        points.append(
            Point(
                "machine",
                {"line": "L1", "station": station},
                {"PartsProduced": index, "State": index % 3, "Temperature": 20.0 + index / 4},
                base + index * 1_000_000,
            )
        )
        points.append(
            Point(
                "sensor",
                {"line": "L1", "station": station, "sensor": "energy", "unit": "kWh"},
                {"value": index * 0.5},
                base + index * 1_000_000,
            )
        )
    return points


def _influxql_post(url: str, query: str) -> None:
    """A statement InfluxDB only takes by POST (DROP, CREATE), checked for an error in its answer."""
    body = urllib.parse.urlencode({"q": query}).encode()
    with urllib.request.urlopen(f"{url}/query", data=body, timeout=10) as answer:
        assert all("error" not in result for result in json.load(answer)["results"])


async def _write_twice(sink, points: list[Point]) -> int:
    await sink.open()
    data = encode(points)
    rejected = await sink.write(data, len(points))
    rejected += await sink.write(data, len(points))  # at-least-once: the same batch again
    await sink.close()
    return rejected


def test_influxdb1_round_trip(influxdb):
    base = time.time_ns() - 3_600 * 10**9
    sink = InfluxDB1(InfluxDB1Sink(type="influxdb1", url=influxdb.url, database="roundtrip"))
    assert asyncio.run(_write_twice(sink, _points(base))) == 0
    rows = influx_rows(influxdb.url, "roundtrip", "machine")
    assert len(rows) == 50  # written twice, stored once
    assert sorted(row["PartsProduced"] for row in rows) == list(range(50))
    assert {row["time"] for row in rows} == {base + index * 1_000_000 for index in range(50)}
    sensor = influx_rows(influxdb.url, "roundtrip", "sensor")
    assert len(sensor) == 50 and {row["unit"] for row in sensor} == {"kWh"}
    frame = asyncio.run(
        influx_query(influxdb.url, "roundtrip", "machine", base, base + 10**12, {"station": "Press"})
    )
    assert len(frame) == 50 and frame["time"].dt.tz is not None


def test_influxdb1_rejects_bad_points_without_retrying(influxdb):
    sink = InfluxDB1(InfluxDB1Sink(type="influxdb1", url=influxdb.url, database="conflict"))
    stamp = time.time_ns()

    async def go() -> tuple[int, int]:
        await sink.open()
        try:
            first = await sink.write(b"m,a=b v=1i %d\n" % stamp, 1)
            second = await sink.write(b'm,a=b v="text" %d\n' % (stamp + 1), 1)  # field type conflict
        finally:
            await sink.close()
        return first, second

    assert asyncio.run(go()) == (0, 1)


def test_influxdb1_creates_a_database_dropped_under_it_and_writes_the_batch(influxdb):
    sink = InfluxDB1(InfluxDB1Sink(type="influxdb1", url=influxdb.url, database="dropped"))
    stamp = time.time_ns()

    async def go() -> list[int]:
        await sink.open()
        try:
            first = await sink.write(b"m,a=b v=1i %d\n" % stamp, 1)
            _influxql_post(influxdb.url, 'DROP DATABASE "dropped"')
            second = await sink.write(b"m,a=b v=2i %d\n" % (stamp + 1), 1)
        finally:
            await sink.close()
        return [first, second]

    assert asyncio.run(go()) == [0, 0]
    assert [row["v"] for row in influx_rows(influxdb.url, "dropped", "m")] == [2]


def test_influxdb2_api_round_trip_on_victoria_metrics(victoria):
    base = (time.time_ns() - 600 * 10**9) // 10**6 * 10**6  # VictoriaMetrics keeps milliseconds
    config = InfluxDB2Sink(
        type="influxdb2", url=victoria.url, token="t", org="acme", bucket="plant", gzip=True
    )
    assert asyncio.run(_write_twice(InfluxDB2(config), _points(base, "Oven"))) == 0
    series = victoria_export(victoria.url, '{__name__="machine_PartsProduced",station="Oven"}')
    assert len(series) == 1
    assert series[0]["metric"]["line"] == "L1"
    assert series[0]["values"] == list(range(50))  # deduplicated by timestamp
    assert series[0]["timestamps"] == [(base + index * 1_000_000) // 10**6 for index in range(50)]


def test_embedded_round_trip_and_query(tmp_path: Path):
    base = time.time_ns() - 60 * 10**9
    sink = Embedded(EmbeddedSink(type="embedded", path="h.duckdb"), tmp_path)
    assert asyncio.run(_write_twice(sink, _points(base) + _points(base, "Saw"))) == 0
    historian = Historian(tmp_path / "h.duckdb", read_only=True)
    frame = historian.query("machine", base, base + 10**12, {"station": "Saw"})
    assert len(frame) == 50
    assert list(frame.columns[:3]) == ["time", "line", "station"]
    assert frame["PartsProduced"].tolist() == list(range(50))
    assert frame["time"].iloc[0] == pd.Timestamp(base, unit="ns", tz="UTC")
    assert len(historian.query("machine", base + 10 * 1_000_000, base + 20 * 1_000_000)) == 20
    assert historian.query("nothing").empty
