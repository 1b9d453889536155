#!/bin/sh
# Write Mosquitto's password file from the environment, then start the broker.
# The TLS listener (8883) starts when $MOSQUITTO_CERTS holds ca.crt, server.crt and server.key;
# with none of them the broker runs the plain listener only, and says so.
# The paths default to the container's; the tests override them to run this script with
# Debian's mosquitto.
set -eu
: "${MQTT_LINE_PASSWORD:?set MQTT_LINE_PASSWORD in .env}"
: "${MQTT_CONNECTOR_PASSWORD:?set MQTT_CONNECTOR_PASSWORD in .env}"
config="${MOSQUITTO_CONFIG:-/fabbrica/mosquitto.conf}"
passwords="${MOSQUITTO_PASSWORD_FILE:-/mosquitto/data/passwords}"
certs="${MOSQUITTO_CERTS:-/mosquitto/certs}"
broker="${MOSQUITTO_BIN:-mosquitto}"

umask 077
: > "$passwords"
mosquitto_passwd -b "$passwords" line "$MQTT_LINE_PASSWORD"
mosquitto_passwd -b "$passwords" connector "$MQTT_CONNECTOR_PASSWORD"
chown mosquitto:mosquitto "$passwords" 2>/dev/null || true

found=0
for name in ca.crt server.crt server.key; do
  if [ -f "$certs/$name" ]; then found=$((found + 1)); fi
done
if [ "$found" -eq 3 ]; then
  exec "$broker" -c "$config"
fi
if [ "$found" -ne 0 ]; then
  echo "entrypoint.sh: $certs must hold all of ca.crt, server.crt and server.key for the TLS listener" >&2
  exit 1
fi
echo "entrypoint.sh: no certificates in $certs: TLS listener 8883 off, plain listener 1883 only" >&2
plain="$(dirname "$passwords")/mosquitto-plain.conf"
sed '/^# --- TLS listener/,/^# --- end TLS listener/d' "$config" > "$plain"
exec "$broker" -c "$plain"
