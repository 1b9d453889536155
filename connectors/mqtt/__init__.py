"""MQTT source: topic filters with JSON, plain-number or Sparkplug B payloads, QoS 1, persistent session."""
