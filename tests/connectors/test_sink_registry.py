"""The sink registry is the one place a sink type is chosen.

Every registered sink has settings, a writer and a reader, and an example in sample.yaml that
validates; `read_sink` reads a `sink:` section the same way for everyone; writing through
`open_writer` and reading through `open_reader` give the points back, from the embedded
historian and from a real InfluxDB 1.x; and no code outside connectors/sinks/ dispatches on
a type name.
"""

from __future__ import annotations

import ast
import asyncio
import re
import time
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from connectors.common.points import Point, encode
from connectors.common.secrets import substitute
from connectors.config import ConfigError
from connectors.sinks.base import QueryError, SinkSettings
from connectors.sinks.registry import SINK_TYPES, SINKS, open_reader, open_writer, read_sink

from .conftest import ROOT

SAMPLE = ROOT / "connectors" / "sinks" / "sample.yaml"
# where dispatch code would live; connectors/sinks/ is the registry's own folder
PACKAGES = ("connectors", "fabbrica", "twin", "twinloop", "simulations")


class _AnyValue(Mapping[str, str]):
    """An environment in which every variable is set."""

    def __getitem__(self, key: str) -> str:
        return f"value-of-{key}"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _sample_sinks() -> dict[str, dict[str, typing.Any]]:
    """Each `sink:` of sample.yaml, the one in force and the commented ones, by type."""
    text = SAMPLE.read_text()
    sections = [yaml.safe_load(text)["sink"]]
    commented = [line[2:] for line in text.splitlines() if line.startswith("# sink: ")]
    sections += [yaml.safe_load(line)["sink"] for line in commented]
    return {section["type"]: substitute(section, _AnyValue()) for section in sections}


def test_every_registered_sink_has_settings_a_writer_a_reader_and_a_sample(tmp_path: Path) -> None:
    samples = _sample_sinks()
    assert tuple(sink.type for sink in SINKS) == SINK_TYPES and len(set(SINK_TYPES)) == len(SINKS)
    assert set(samples) == set(SINK_TYPES), "sample.yaml shows one `sink:` per registered type"
    for sink in SINKS:
        assert issubclass(sink.settings, SinkSettings), sink.type
        assert typing.get_args(sink.settings.model_fields["type"].annotation) == (sink.type,), sink.type
        settings = sink.settings.model_validate(samples[sink.type])
        writer = open_writer(settings, tmp_path)
        reader = open_reader(settings, tmp_path)
        for method in ("open", "write", "close"):
            assert asyncio.iscoroutinefunction(getattr(writer, method)), (sink.type, method)
        for method in ("check", "query"):
            assert asyncio.iscoroutinefunction(getattr(reader, method)), (sink.type, method)
        assert writer.name and reader.name


def test_settings_of_no_registered_sink_are_refused() -> None:
    class Elsewhere(SinkSettings):
        pass

    with pytest.raises(ValueError, match="no registered sink for Elsewhere"):
        open_writer(Elsewhere(type="embedded"))


def test_read_sink_from_a_sink_only_file_and_from_a_connector_config(tmp_path: Path) -> None:
    folder = tmp_path / "deploy"
    folder.mkdir()
    only = folder / "sink.yaml"
    only.write_text("sink: {type: embedded, path: data/h.duckdb, batch_size: 10}\n")
    loaded = read_sink(only, {})
    assert loaded.config.type == "embedded" and loaded.base == folder.resolve()
    assert loaded.config.path == str(folder.resolve() / "data" / "h.duckdb")  # type: ignore[attr-defined]
    assert loaded.config.batch_size == 10 and loaded.secrets == frozenset()

    whole = folder / "connector.yaml"
    whole.write_text(
        "name: plant\n"
        "sink: {type: influxdb1, url: http://h:8086, database: plant, username: u, password: '${PW}'}\n"
        # the sources' variables need not be set to read where the points go
        "mqtt: [{url: 'mqtt://u:${UNSET_FOR_THE_SINK}@h:1883', topics: [{filter: 'a/#'}]}]\n"
    )
    loaded = read_sink(whole, {"PW": "pa ss"})
    password = loaded.config.password  # type: ignore[attr-defined]
    assert isinstance(password, SecretStr) and password.get_secret_value() == "pa ss"
    assert "pa ss" not in repr(loaded.config) and loaded.secrets == frozenset({"pa ss"})


@pytest.mark.parametrize(
    ("text", "message", "field"),
    [
        ("name: x\nmqtt: []\n", "sink: required section missing", None),
        ("sink: {type: influxdb2, url: http://h:8086, bucket: b, token: '${NOPE}'}\n", "sink.token:", None),
        ("sink: {type: influxdb9}\n", "invalid sink", ("sink",)),
        ("sink: {type: influxdb1, url: http://h:8086}\n", "invalid sink", ("sink", "influxdb1", "database")),
    ],
)
def test_read_sink_says_what_is_wrong(
    tmp_path: Path, text: str, message: str, field: tuple[str, ...] | None
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        read_sink(path, {})
    assert str(path) in str(caught.value)
    if field is None:
        assert caught.value.error is None
    else:
        assert caught.value.error is not None
        first = caught.value.error.errors()[0]
        assert first["loc"] == field
        if field == ("sink",):
            assert first["msg"] == f"type must be one of: {', '.join(SINK_TYPES)}"


def _points(base: int) -> list[Point]:
    return [
        Point(
            "machine",
            {"line": "L1", "station": station},
            {"State": index % 3, "Occupancy": index / 2},
            base + index,
        )
        for index in range(20)
        for station in ("Press", "Oven")
    ]


async def _write_then_read(settings: SinkSettings, base: int) -> typing.Any:
    writer = open_writer(settings)
    await writer.open()
    try:
        assert await writer.write(encode(_points(base)), 40) == 0
    finally:
        await writer.close()
    reader = open_reader(settings)
    await reader.check()
    everything = await reader.query("machine", base, base + 20)
    oven = await reader.query("machine", base + 5, base + 10, {"station": "Oven"})
    return everything, oven


def _assert_read_back(everything: typing.Any, oven: typing.Any, base: int) -> None:
    assert str(everything["time"].dtype) == "datetime64[ns, UTC]"
    assert len(everything) == 40 and set(everything["station"]) == {"Press", "Oven"}
    assert sorted(everything.loc[everything["station"] == "Press", "Occupancy"]) == [i / 2 for i in range(20)]
    assert list(oven["station"]) == ["Oven"] * 5
    assert [t.value - base for t in oven["time"]] == list(range(5, 10))
    assert list(oven["State"]) == [index % 3 for index in range(5, 10)]


def test_embedded_written_and_read_through_the_registry(tmp_path: Path) -> None:
    from connectors.sinks.embedded import EmbeddedSink

    base = time.time_ns() - 3_600 * 10**9
    settings = EmbeddedSink(type="embedded", path="h.duckdb").resolved(tmp_path)
    _assert_read_back(*asyncio.run(_write_then_read(settings, base)), base)
    missing = open_reader(EmbeddedSink(type="embedded", path="gone.duckdb"), tmp_path)
    with pytest.raises(QueryError, match="no such file"):
        asyncio.run(missing.query("machine", 0, 1))
    (tmp_path / "text.duckdb").write_text("no database\n")
    text = open_reader(EmbeddedSink(type="embedded", path="text.duckdb"), tmp_path)
    with pytest.raises(QueryError, match="cannot open the historian"):
        asyncio.run(text.query("machine", 0, 1))


def test_influxdb1_written_and_read_through_the_registry(influxdb) -> None:  # type: ignore[no-untyped-def]
    from connectors.sinks.influxdb1 import InfluxDB1Sink

    base = time.time_ns() - 3_600 * 10**9
    settings = InfluxDB1Sink(type="influxdb1", url=influxdb.url, database="registry")
    _assert_read_back(*asyncio.run(_write_then_read(settings, base)), base)
    nowhere = InfluxDB1Sink(type="influxdb1", url="http://127.0.0.1:9", database="registry")
    with pytest.raises(QueryError):
        asyncio.run(open_reader(nowhere).check())


# -- no dispatch on a type name outside connectors/sinks/ ---------------------------------------


def dispatches(source: str, names: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line, type name) wherever `source` chooses by a sink type name: compared with it
    (==, !=, in, not in, also inside a literal tuple, list or set), matched against it in a
    `case`, used as a key of a dict literal or as a subscript. Naming a type as data, as in
    `EmbeddedSink(type="embedded")` or `{"type": "influxdb1", ...}`, is not dispatch."""
    found: list[tuple[int, str]] = []

    def names_in(node: ast.AST | None) -> list[tuple[int, str]]:
        if isinstance(node, ast.Constant) and node.value in names:
            return [(node.lineno, node.value)]
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return [hit for element in node.elts for hit in names_in(element)]
        return []

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                found += names_in(operand)
        elif isinstance(node, ast.MatchValue):
            found += names_in(node.value)
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                found += names_in(key)
        elif isinstance(node, ast.Subscript):
            found += names_in(node.slice)
    return sorted(found)


def test_the_dispatch_finder_finds_dispatch_and_only_dispatch() -> None:
    names = ("influxdb1", "embedded")
    dispatch = (
        'if sink.type == "influxdb1": pass\n'
        'if "embedded" != kind: pass\n'
        'if p not in ("x", "influxdb1"): pass\n'
        'match kind:\n    case "embedded": pass\n'
        'factories = {"influxdb1": 1}\n'
        'factory = factories["embedded"]\n'
    )
    assert [line for line, _ in dispatches(dispatch, names)] == [1, 2, 3, 5, 6, 7]
    data = (
        '"""A docstring naming embedded and "influxdb1"."""\n'
        'sink = EmbeddedSink(type="embedded")\n'
        'config = {"type": "influxdb1", "url": "http://h"}\n'
        'if sink.type == kind: pass\n'
    )
    assert dispatches(data, names) == []


def test_no_code_outside_the_sinks_folder_dispatches_on_a_sink_type() -> None:
    sinks = ROOT / "connectors" / "sinks"
    files = [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 50  # the scan sees the packages
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {name!r}"
        for path in files
        if sinks not in path.parents
        for line, name in dispatches(path.read_text(encoding="utf-8"), SINK_TYPES)
    ]
    advice = "ask connectors.sinks.registry instead of naming a sink type:\n"
    assert not offenders, advice + "\n".join(offenders)
