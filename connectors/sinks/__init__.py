"""Sinks: where points land. InfluxDB 1.x (v1 write API), InfluxDB 2.x/3.x (v2 write API), or an
embedded DuckDB historian. All take line protocol in batches and say how many points they refused."""
