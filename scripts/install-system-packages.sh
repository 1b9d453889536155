#!/usr/bin/env bash
# Debian packages of the servers and tools the tests start. Skipped when already installed.
set -euo pipefail
packages=(
  mosquitto
  influxdb
  victoria-metrics
  chromium
  docker-compose
)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
