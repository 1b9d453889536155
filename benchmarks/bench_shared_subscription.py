"""One connector against two in an MQTT shared subscription group, side by side in one run.

    .venv/bin/python benchmarks/bench_shared_subscription.py [--messages 60000] [--repeats 3]

How a plant outgrows one connector: several `fabbrica connect` processes subscribe to
`$share/GROUP/factory/+/+/+`, and the broker gives each message to one of them. Each repeat
queues N JSON sensor messages (QoS 1) at Mosquitto for offline persistent sessions, once for
one member and once for a group of two (the broker deals them out in turn, N/2 each), then
starts the connector(s) and measures the drain into one InfluxDB 1.x database exactly as
bench_connectors.py does: from the first message any member received to the sink's answer to
the write that stored the last point. A drain that does not store all N is an error. The
order of the two runs alternates between repeats. Prints points/s per run, the medians and
the ratio two/one; the machine's cores bound what the second member can add (Mosquitto,
influxd and both connectors share them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench_connectors import (
    BenchError,
    Servers,
    connector_config,
    create_database,
    drain,
    publish,
    register,
)

FILTER = "factory/+/+/+"


def group_drain(folder: Path, servers: Servers, members: int, count: int, name: str, readings: int) -> float:
    """Points per second `members` connectors in one shared group drain from the broker."""
    topic = f"$share/{name}/{FILTER}"
    paths = [
        connector_config(
            folder,
            servers,
            name,
            member=f"m{index}",
            topic_filter=topic,
            batch_size=10000,
            flush_interval="0.5s",
        )
        for index in range(members)
    ]
    for index in range(members):
        register(f"bench-{name}m{index}", servers.mqtt_port, topic)
    create_database(servers, name)
    publish(servers.mqtt_port, count, readings=readings)
    rate, shares = drain(servers, name, paths, count * readings)
    if members > 1 and not all(shares):
        raise BenchError(f"{name}: a member wrote nothing ({shares})")
    print(f"  {members} member(s): {rate:10.0f} points/s, points written per member {shares}", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--readings-per-message", type=int, default=1, help="a JSON list of K readings")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-shared-"))
    servers = Servers(folder)
    rates: dict[int, list[float]] = {1: [], 2: []}
    try:
        for repeat in range(args.repeats):
            print(f"repeat {repeat + 1} of {args.repeats}", flush=True)
            for members in (1, 2) if repeat % 2 == 0 else (2, 1):
                name = f"share{members}r{repeat}"
                rates[members].append(
                    group_drain(folder, servers, members, args.messages, name, args.readings_per_message)
                )
    finally:
        servers.close()
        shutil.rmtree(folder, ignore_errors=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(
        f"medians of {args.repeats} repeats, {args.messages} messages x {args.readings_per_message} readings"
    )
    print(f"{'one_connector_points_per_s':36s} {one:12.1f}")
    print(f"{'two_connectors_points_per_s':36s} {two:12.1f}")
    print(f"{'ratio_two_over_one':36s} {two / one:12.3f}")
    print(f"{'ratios_per_repeat':36s} {[round(b / a, 3) for a, b in zip(rates[1], rates[2], strict=True)]}")
    print(f"{'cpus':36s} {os.cpu_count():12d}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        sys.exit(f"bench_shared_subscription: error: {exc}")
