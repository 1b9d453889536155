"""The simulated pilot-line hardware: the twin's engine in scaled real time behind virtual PLCs and sensors.

`serve` runs a line's SimPy model against the wall clock (`clock`), shows each station
as a virtual PLC on an OPC UA server (`plc`), publishes its sensors over MQTT
(`sensors`), draws its process signals (`signals`) and keeps the ground truth of what
happened (`truth`). Configuration is one validated model (`config`).
"""
