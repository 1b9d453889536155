"""The embedded historian: points in a DuckDB file, for a testbed with no database server.

One narrow table holds every point value: (measurement, series, time_ns, field) is its key,
so writing the same point twice overwrites it. `Historian.query` gives the wide shape the
twin's calibration reads: one row per timestamp and series, columns `time` (UTC), the tags,
then one column per field.

    historian = Historian("historian.duckdb")
    frame = historian.query("machine", start, end, {"station": "Press"})

DuckDB lets one process write a file at a time: query it from the connector's process, or
once the connector has stopped. `writer.Embedded` is the historian as a sink, `reader.HistorianReader`
its reader.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from connectors.common.points import datetime_ns, parse_line

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement VARCHAR NOT NULL,
    series VARCHAR NOT NULL,
    time_ns BIGINT NOT NULL,
    field VARCHAR NOT NULL,
    tags VARCHAR NOT NULL,
    value_double DOUBLE,
    value_int BIGINT,
    value_bool BOOLEAN,
    value_str VARCHAR,
    PRIMARY KEY (measurement, series, time_ns, field)
)
"""
TimeBound = int | datetime | pd.Timestamp


class Historian:
    """A DuckDB file of points, with the query interface the twin's calibration uses."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = Path(path)
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = duckdb.connect(str(self.path), read_only=read_only)
        if not read_only:
            self._db.execute(_SCHEMA)

    def insert_lines(self, data: bytes) -> int:
        """Store line protocol; return how many lines were not valid points."""
        rows: dict[str, list[object]] = {name: [] for name in _COLUMNS}
        bad = 0
        # lines end with \n only: \r or U+2028 inside a string field belong to the value
        for raw in data.decode("utf-8", errors="replace").split("\n"):
            if not raw:
                continue
            try:
                point = parse_line(raw)
            except (ValueError, IndexError):
                bad += 1
                continue
            series = json.dumps(point.tags, sort_keys=True, separators=(",", ":"))
            for field, value in point.fields.items():
                rows["measurement"].append(point.measurement)
                rows["series"].append(series)
                rows["time_ns"].append(point.time_ns)
                rows["field"].append(field)
                rows["tags"].append(series)
                rows["value_double"].append(value if isinstance(value, float) else None)
                rows["value_int"].append(
                    value if isinstance(value, int) and not isinstance(value, bool) else None
                )
                rows["value_bool"].append(value if isinstance(value, bool) else None)
                rows["value_str"].append(value if isinstance(value, str) else None)
        if rows["measurement"]:
            frame = pd.DataFrame(rows).astype(_DTYPES)
            # Last write wins inside one batch too, as in InfluxDB.
            frame = frame.drop_duplicates(subset=["measurement", "series", "time_ns", "field"], keep="last")
            self._db.register("incoming", frame)
            try:
                self._db.execute("INSERT OR REPLACE INTO points SELECT * FROM incoming")
            finally:
                self._db.unregister("incoming")
        return bad

    def query(
        self,
        measurement: str,
        start: TimeBound | None = None,
        end: TimeBound | None = None,
        tags: dict[str, str] | None = None,
    ) -> pd.DataFrame:
        """Points of `measurement` with start <= time < end, filtered by tag values."""
        sql = "SELECT series, time_ns, field, value_double, value_int, value_bool, value_str FROM points"
        sql += " WHERE measurement = ?"
        params: list[object] = [measurement]
        if start is not None:
            sql += " AND time_ns >= ?"
            params.append(_ns(start))
        if end is not None:
            sql += " AND time_ns < ?"
            params.append(_ns(end))
        for key, value in (tags or {}).items():
            sql += " AND json_extract_string(tags, ?) = ?"
            params += [f'$."{key}"', value]
        narrow = self._db.execute(sql + " ORDER BY time_ns, series", params).df()
        return _widen(narrow)

    def measurements(self) -> list[str]:
        return [
            row[0]
            for row in self._db.execute("SELECT DISTINCT measurement FROM points ORDER BY 1").fetchall()
        ]

    def close(self) -> None:
        self._db.close()


_COLUMNS = (
    "measurement",
    "series",
    "time_ns",
    "field",
    "tags",
    "value_double",
    "value_int",
    "value_bool",
    "value_str",
)
_DTYPES = {
    "measurement": "string",
    "series": "string",
    "time_ns": "int64",
    "field": "string",
    "tags": "string",
    "value_double": "Float64",
    "value_int": "Int64",
    "value_bool": "boolean",
    "value_str": "string",
}


def _ns(value: TimeBound) -> int:
    if isinstance(value, pd.Timestamp):
        return int(value.value)
    if isinstance(value, datetime):
        return datetime_ns(value)
    return int(value)


def _widen(narrow: pd.DataFrame) -> pd.DataFrame:
    if narrow.empty:
        return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]")})
    values: list[object] = []
    for double, integer, boolean, text in zip(
        narrow["value_double"], narrow["value_int"], narrow["value_bool"], narrow["value_str"], strict=True
    ):
        if not pd.isna(double):
            values.append(float(double))
        elif not pd.isna(integer):
            values.append(int(integer))
        elif not pd.isna(boolean):
            values.append(bool(boolean))
        else:
            values.append(None if pd.isna(text) else text)
    narrow = narrow.assign(value=pd.Series(values, dtype=object, index=narrow.index))
    wide = narrow.set_index(["time_ns", "series", "field"])["value"].unstack("field")
    wide = wide.reset_index()
    wide.columns.name = None
    tag_rows = [json.loads(series) for series in wide["series"]]
    tag_frame = pd.DataFrame(tag_rows, index=wide.index)
    fields = [column for column in wide.columns if column not in ("time_ns", "series")]
    result = pd.concat(
        [
            pd.DataFrame({"time": pd.to_datetime(wide["time_ns"], unit="ns", utc=True)}),
            tag_frame,
            wide[fields],
        ],
        axis=1,
    )
    for column in fields:
        result[column] = result[column].infer_objects()
    return result.reset_index(drop=True)
