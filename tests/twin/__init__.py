"""Tests of the twin core (`twin/`), in folders mirroring the package: the line files, the engines,
the bottleneck, calibration, the KPI catalogue and experiments, with the exact references of
queueing theory (`exact/`) the engines are checked against."""
