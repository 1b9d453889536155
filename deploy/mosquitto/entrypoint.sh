#!/bin/sh
# Write Mosquitto's password file from the environment, then start the broker.
set -eu
: "${MQTT_LINE_PASSWORD:?set MQTT_LINE_PASSWORD in .env}"
: "${MQTT_CONNECTOR_PASSWORD:?set MQTT_CONNECTOR_PASSWORD in .env}"
umask 077
: > /mosquitto/data/passwords
mosquitto_passwd -b /mosquitto/data/passwords line "$MQTT_LINE_PASSWORD"
mosquitto_passwd -b /mosquitto/data/passwords connector "$MQTT_CONNECTOR_PASSWORD"
chown mosquitto:mosquitto /mosquitto/data/passwords 2>/dev/null || true
exec mosquitto -c /fabbrica/mosquitto.conf
