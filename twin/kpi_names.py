"""The names of the KPIs a run of the twin reports, line-wide and per station (see docs/kpis.md).

One list for those who check KPI names (experiment files) and those who write them (the
results sink), in a module light enough to import from either.
"""

LINE_KPIS = (
    "throughput_per_hour",
    "parts_out",
    "scrapped",
    "wip_mean",
    "lead_time_mean_s",
    "lead_time_p95_s",
)
STATION_KPIS = (
    "working",
    "blocked",
    "starved",
    "down",
    "setup",
    "utilization",
    "oee",
    "availability",
    "performance",
    "quality",
    "parts_out",
    "scrapped",
    "failures",
    "bottleneck_sole",
    "bottleneck_shifting",
)
DEFAULT_KPIS = ("throughput_per_hour", "wip_mean", "lead_time_mean_s")
