"""MQTT source against a real Mosquitto broker: formats, topic tags, Sparkplug B, and faults
(broker restart, kill -9 of the connector, graceful shutdown). Nothing lost, nothing twice."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid

import paho.mqtt.client as mqtt

from connectors.mqtt import sparkplug as spb
from connectors.sinks.embedded import Historian

from .conftest import Publisher, influx_rows, influxql, sensor_values, wait_until


def _config(mosquitto, sink, topics=None, **extra):
    return {
        "name": "test",
        "sink": sink,
        "spool": {"path": "spool"},
        "mqtt": [
            {
                "url": mosquitto.url,
                "client_id": f"conn-{uuid.uuid4().hex[:8]}",
                "topics": topics or [{"filter": "factory/+/+/+", "format": "json"}],
            }
        ],
        **extra,
    }


def _connected(connector, times: int = 1) -> bool:
    return connector.output().count("connected as") >= times


def test_json_and_number_formats_with_tags_from_topic_levels(
    mosquitto, write_config, connector_factory, tmp_path
):
    topics = [
        {"filter": "factory/+/+/+", "format": "json"},
        {
            "filter": "plant/+/+/+/raw",
            "format": "number",
            "measurement": "raw",
            "topic_tags": "_/line/station/signal",
        },
    ]
    sink = {"type": "embedded", "path": "h.duckdb"}
    connector = connector_factory(write_config(_config(mosquitto, sink, topics))).start()
    wait_until(lambda: _connected(connector))
    publisher = Publisher(mosquitto.port, f"pub-{uuid.uuid4().hex[:6]}")
    now = time.time()
    publisher.publish("factory/L1/Press/energy", json.dumps({"ts": now, "value": 1.25, "unit": "kWh"}))
    publisher.publish(
        "factory/L1/Press/temperature",
        json.dumps({"ts": "2024-05-01T10:00:00.123456Z", "value": 20, "unit": "C"}),
    )
    publisher.publish(
        "factory/L1/Press/events",
        json.dumps({"ts": now, "product": "A", "cycle_time_s": 12.5, "scrapped": False, "parts_produced": 7}),
    )
    publisher.publish("plant/L2/Oven/temp/raw", "180.5")
    for bad in (
        "not json",
        json.dumps({"ts": "yesterday", "value": 1}),
        json.dumps({"ts": 1e30, "value": 1}),
    ):
        publisher.publish("factory/L1/Press/energy", bad)
    publisher.publish("plant/L2/Oven/temp/raw", "NaN-ish")
    publisher.close()
    time.sleep(0.5)
    assert connector.stop() == 0
    historian = Historian(tmp_path / "h.duckdb", read_only=True)
    sensor = historian.query("sensor").sort_values("sensor").reset_index(drop=True)
    assert sensor[["line", "station", "sensor", "unit"]].values.tolist() == [
        ["L1", "Press", "energy", "kWh"],
        ["L1", "Press", "temperature", "C"],
    ]
    assert sensor["value"].tolist() == [1.25, 20.0]
    assert str(sensor["time"][1]) == "2024-05-01 10:00:00.123456+00:00"
    part = historian.query("part")
    assert part[["line", "station", "product"]].values.tolist() == [["L1", "Press", "A"]]
    assert part["cycle_time_s"].tolist() == [12.5] and part["scrapped"].tolist() == [False]
    assert "sensor" not in part.columns
    raw = historian.query("raw")
    assert raw[["line", "station", "signal", "value"]].values.tolist() == [["L2", "Oven", "temp", 180.5]]
    health = historian.query("connector_health")
    assert health["rejected"].iloc[-1] == 4
    assert health["points_in"].iloc[-1] >= 4


def test_sparkplug_b_aliases_and_rebirth_on_sequence_gap(
    mosquitto, write_config, connector_factory, tmp_path
):
    group, edge = "plant", f"edge{uuid.uuid4().hex[:6]}"
    topics = [{"filter": f"spBv1.0/{group}/#", "format": "sparkplug"}]
    connector = connector_factory(
        write_config(_config(mosquitto, {"type": "embedded", "path": "h.duckdb"}, topics))
    )
    connector.start()
    wait_until(lambda: _connected(connector))
    rebirths: list[bytes] = []
    got_rebirth = threading.Event()
    edge_client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{edge}-node")

    def on_message(client, userdata, message):
        rebirths.append(message.payload)
        got_rebirth.set()

    edge_client.on_message = on_message
    edge_client.connect("127.0.0.1", mosquitto.port)
    edge_client.subscribe(f"spBv1.0/{group}/NCMD/{edge}", qos=1)
    edge_client.loop_start()
    time.sleep(0.3)
    base_ms = int(time.time() * 1000) - 60_000

    def send(kind: str, seq: int, metrics: list[dict], device: str = "") -> None:
        payload = spb.Payload(seq=seq, timestamp=base_ms + seq)
        for metric in metrics:
            payload.metrics.add(**metric)
        topic = f"spBv1.0/{group}/{kind}/{edge}" + (f"/{device}" if device else "")
        edge_client.publish(topic, payload.SerializeToString(), qos=1).wait_for_publish(5)

    send(
        "NBIRTH",
        0,
        [
            {"name": "bdSeq", "datatype": spb.INT64, "long_value": 0},
            {"name": "Uptime", "alias": 1, "datatype": spb.INT64, "long_value": 5, "timestamp": base_ms},
        ],
    )
    send(
        "DBIRTH",
        1,
        [
            {
                "name": "Spindle/Speed",
                "alias": 10,
                "datatype": spb.DOUBLE,
                "double_value": 1000.0,
                "timestamp": base_ms + 1,
            }
        ],
        "press",
    )
    send("DDATA", 2, [{"alias": 10, "double_value": 1200.0, "timestamp": base_ms + 2}], "press")
    send("NDATA", 3, [{"alias": 1, "long_value": 6, "timestamp": base_ms + 3}])
    assert not got_rebirth.wait(0.5)
    send(
        "DDATA", 9, [{"alias": 10, "double_value": 1300.0, "timestamp": base_ms + 9}], "press"
    )  # gap: 4..8 lost
    assert got_rebirth.wait(10), "no rebirth request after a sequence gap"
    request = spb.Payload.FromString(rebirths[0])
    assert [(m.name, m.boolean_value) for m in request.metrics] == [("Node Control/Rebirth", True)]
    edge_client.loop_stop()
    edge_client.disconnect()
    time.sleep(0.3)
    assert connector.stop() == 0
    historian = Historian(tmp_path / "h.duckdb", read_only=True)
    frame = historian.query("sparkplug", tags={"device": "press"})
    assert frame["Spindle/Speed"].tolist() == [1000.0, 1200.0, 1300.0]
    assert set(frame["group"]) == {group} and set(frame["edge_node"]) == {edge}
    node = historian.query("sparkplug", tags={"edge_node": edge})
    assert node.dropna(subset=["Uptime"])["Uptime"].tolist() == [5, 6]
    assert "bdSeq" not in node.columns


def test_broker_restart_loses_nothing(mosquitto, influxdb, write_config, connector_factory):
    database = f"broker_{uuid.uuid4().hex[:6]}"
    sink = {"type": "influxdb1", "url": influxdb.url, "database": database, "flush_interval": "0.2s"}
    connector = connector_factory(write_config(_config(mosquitto, sink))).start()
    wait_until(lambda: _connected(connector))
    publisher = Publisher(mosquitto.port, f"pub-{uuid.uuid4().hex[:6]}")
    publisher.many(0, 300, rate=1000)
    time.sleep(0.3)
    mosquitto.restart()
    publisher.many(300, 300, rate=1000)
    publisher.close()
    try:
        wait_until(lambda: len(sensor_values(influxdb.url, database)) >= 600, timeout=20)
    except AssertionError:
        got = set(sensor_values(influxdb.url, database))
        missing = sorted(set(map(float, range(600))) - got)
        raise AssertionError(
            f"missing {len(missing)}: {missing[:20]}...{missing[-5:]}\n{connector.output()}"
        ) from None
    wait_until(lambda: _connected(connector, 2))
    assert connector.stop() == 0
    assert sensor_values(influxdb.url, database) == [float(index) for index in range(600)]


def test_kill_9_of_the_connector_loses_nothing(mosquitto, influxdb, write_config, connector_factory):
    database = f"kill_{uuid.uuid4().hex[:6]}"
    sink = {"type": "influxdb1", "url": influxdb.url, "database": database, "flush_interval": "0.5s"}
    path = write_config(_config(mosquitto, sink))
    connector = connector_factory(path).start()
    wait_until(lambda: _connected(connector))
    publisher = Publisher(mosquitto.port, f"pub-{uuid.uuid4().hex[:6]}")
    sender = threading.Thread(target=publisher.many, args=(0, 3000, 1500))
    sender.start()
    time.sleep(0.8)
    connector.kill()  # mid-stream: messages in flight, in the buffer, in the spool
    time.sleep(0.5)
    connector.start()
    sender.join()
    publisher.close()
    wait_until(lambda: len(sensor_values(influxdb.url, database)) >= 3000, timeout=40)
    assert connector.stop() == 0
    assert sensor_values(influxdb.url, database) == [float(index) for index in range(3000)]


def test_graceful_shutdown_flushes_every_pending_point(mosquitto, influxdb, write_config, connector_factory):
    database = f"flush_{uuid.uuid4().hex[:6]}"
    sink = {
        "type": "influxdb1",
        "url": influxdb.url,
        "database": database,
        "flush_interval": "60s",
        "batch_size": 100000,
    }
    connector = connector_factory(write_config(_config(mosquitto, sink))).start()
    wait_until(lambda: _connected(connector))
    publisher = Publisher(mosquitto.port, f"pub-{uuid.uuid4().hex[:6]}")
    publisher.many(0, 500, rate=5000)
    publisher.close()
    time.sleep(0.5)
    assert not influxql(influxdb.url, database, "SELECT count(value) FROM sensor")  # still buffered
    assert connector.stop(signal.SIGINT) == 0
    assert sensor_values(influxdb.url, database) == [float(index) for index in range(500)]


def test_shared_subscription_spreads_messages_over_two_connectors(
    mosquitto, influxdb, write_config, connector_factory
):
    database = f"shared_{uuid.uuid4().hex[:6]}"
    group = f"g{uuid.uuid4().hex[:6]}"
    sink = {"type": "influxdb1", "url": influxdb.url, "database": database, "flush_interval": "0.2s"}
    topics = [{"filter": f"$share/{group}/factory/+/+/+", "format": "json"}]
    connectors = []
    for index in range(2):
        config = _config(mosquitto, sink, topics, name=f"shared{index}")
        config["spool"] = {"path": f"spool{index}"}
        connector = connector_factory(write_config(config, f"shared{index}.yaml"))
        connector.log = connector.config.parent / f"shared{index}.log"
        connectors.append(connector.start())
    for connector in connectors:
        wait_until(lambda connector=connector: _connected(connector))
    publisher = Publisher(mosquitto.port, f"pub-{uuid.uuid4().hex[:6]}")
    publisher.many(0, 400, rate=2000, line="L9")
    publisher.close()
    wait_until(lambda: len(sensor_values(influxdb.url, database, "L9")) >= 400)
    for connector in connectors:
        assert connector.stop() == 0
    assert sensor_values(influxdb.url, database, "L9") == [float(index) for index in range(400)]
    health = influx_rows(influxdb.url, database, "connector_health")
    taken = {}
    for row in health:
        taken[row["connector"]] = max(taken.get(row["connector"], 0), row["points_in"])
    assert set(taken) == {"shared0", "shared1"} and all(count > 0 for count in taken.values())
    assert sum(taken.values()) == 400
