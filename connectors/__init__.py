"""Connectors: OPC UA and MQTT sources into InfluxDB or the embedded historian."""
