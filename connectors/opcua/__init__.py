"""OPC UA source: subscriptions (or polling) on PLC variables, found by browse path or NodeId."""
