"""fabbrica: the command line that wires the twin, the simulated line and the connectors together."""

__version__ = "0.1.0"
