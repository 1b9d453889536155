"""The twin loop: what the line recorded goes into the twin, and what the twin says comes back out.

History comes in from the sinks the connectors write to (the embedded historian, InfluxDB) as the
twin's records and data frames (`history`); the twin is calibrated against that history, validated
over the recorded window and run (`calibration`); its results and forecasts go out as points to
the same sinks, next to what the line recorded, for Grafana (`results`). `demo` plays the whole
loop on one machine and `demo_report` tells it as one HTML page.

This is the one package that uses both sides: `twin/` knows no protocol and no database, the
`connectors/` know no twin. The command line (`fabbrica/`) only parses, calls these modules and
prints. The live twin and the closed loop will live here too.
"""
