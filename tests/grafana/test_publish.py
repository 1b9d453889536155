"""`fabbrica grafana publish` and `annotate` against a recording HTTP peer on 127.0.0.1.

No Grafana can run here, so a small server of the test's own answers the few API calls
Grafana answers (folders, datasources, dashboards, annotations) and records every request.
The payloads grafana-client sends must be exactly the provisioning files: the dashboard JSON
in grafana/dashboards/ and the datasource of grafana/provisioning/ with its environment
variables filled in.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fabbrica.cli import app
from fabbrica.grafana.provisioning import DASHBOARDS

from ..connectors.conftest import ROOT
from .conftest import Dataset

GRAFANA = ROOT / "grafana"
TOKEN = "glsa_test_token_0123456789"
runner = CliRunner()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Peer:
    """What a Grafana keeps between calls, and every request it got."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    folders: dict[str, dict] = field(default_factory=dict)
    datasources: dict[str, dict] = field(default_factory=dict)
    dashboards: dict[str, dict] = field(default_factory=dict)

    def calls(self, method: str, prefix: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path.startswith("/api/folders/"):
            uid = path.rsplit("/", 1)[1]
            return (200, self.folders[uid]) if uid in self.folders else (404, {"message": "folder not found"})
        if method == "POST" and path == "/api/folders":
            self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
            return 200, self.folders[body["uid"]]
        if method == "GET" and path.startswith("/api/datasources/uid/"):
            uid = path.rsplit("/", 1)[1]
            found = self.datasources.get(uid)
            return (200, found) if found else (404, {"message": "Data source not found"})
        if method == "POST" and path == "/api/datasources":
            self.datasources[body["uid"]] = body
            return 200, {"id": 1, "message": "Datasource added", "name": body["name"]}
        if method == "PUT" and path.startswith("/api/datasources/uid/"):
            self.datasources[path.rsplit("/", 1)[1]] = body
            return 200, {"id": 1, "message": "Datasource updated"}
        if method == "POST" and path == "/api/dashboards/db":
            uid = body["dashboard"]["uid"]
            self.dashboards[uid] = body
            return 200, {"status": "success", "uid": uid, "url": f"/d/{uid}/x", "version": 1}
        if method == "POST" and path == "/api/annotations":
            return 200, {"id": 1, "message": "Annotation added"}
        return 404, {"message": "not found"}


@pytest.fixture
def peer() -> Iterator[Peer]:
    state = Peer()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            state.requests.append(Request(self.command, self.path, dict(self.headers), body))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, answer = 401, {"message": "invalid API key"}
            else:
                status, answer = state.answer(self.command, self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _publish(peer: Peer, token: str = TOKEN) -> Any:
    return runner.invoke(
        app,
        ["grafana", "publish", "--url", peer.url, "--token", token,
         "--influx-url", "http://influxdb:8086", "--influx-database", "plant"],
        env={"INFLUX_TOKEN": "influx-secret-token"},
    )  # fmt: skip


def test_publish_sends_the_provisioning_dashboards_and_datasource(peer: Peer) -> None:
    result = _publish(peer)
    assert result.exit_code == 0, result.output
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in peer.requests)
    (folder,) = peer.calls("POST", "/api/folders")
    assert folder.body == {"title": "fabbrica", "uid": "fabbrica"}

    (created,) = peer.calls("POST", "/api/datasources")
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/influxdb.yaml").read_text())[
        "datasources"
    ][0]
    expected = json.loads(
        json.dumps(provisioned)
        .replace("${INFLUX_URL}", "http://influxdb:8086")
        .replace("${INFLUX_DATABASE}", "plant")
        .replace("${INFLUX_TOKEN}", "influx-secret-token")
    )
    assert created.body == expected

    uploads = peer.calls("POST", "/api/dashboards/db")
    assert len(uploads) == len(DASHBOARDS)
    on_disk = {name: json.loads((GRAFANA / "dashboards" / name).read_text()) for name in DASHBOARDS}
    assert [upload.body["dashboard"] for upload in uploads] == list(on_disk.values())
    for upload in uploads:
        assert upload.body["overwrite"] is True and upload.body["folderUid"] == "fabbrica"
    assert "/d/fabbrica-line-overview/x" in result.output


def test_publishing_again_updates_in_place(peer: Peer) -> None:
    assert _publish(peer).exit_code == 0
    peer.requests.clear()
    result = _publish(peer)
    assert result.exit_code == 0, result.output
    assert not peer.calls("POST", "/api/folders") and not peer.calls("POST", "/api/datasources")
    (update,) = peer.calls("PUT", "/api/datasources/uid/")
    assert update.path == "/api/datasources/uid/fabbrica-influxdb"
    assert len(peer.calls("POST", "/api/dashboards/db")) == len(DASHBOARDS)
    assert "datasource updated" in result.output


def test_a_refused_token_is_one_line_and_exit_1(peer: Peer) -> None:
    result = _publish(peer, token="wrong")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "401" in result.stderr
    assert "wrong" not in result.stderr and "influx-secret-token" not in result.output


def test_unreachable_grafana_is_one_line_and_exit_1() -> None:
    from ..connectors.conftest import free_port

    result = runner.invoke(
        app,
        ["grafana", "publish", "--url", f"http://127.0.0.1:{free_port()}", "--token", TOKEN,
         "--influx-url", "http://influxdb:8086", "--influx-database", "plant"],
    )  # fmt: skip
    assert result.exit_code == 1 and "cannot connect" in result.stderr


def test_annotate_marks_an_experiment_run(peer: Peer, dataset: Dataset) -> None:
    out = dataset.folder / "experiment"
    metadata = json.loads((out / "experiment.json").read_text())
    result = runner.invoke(app, ["grafana", "annotate", str(out), "--url", peer.url, "--token", TOKEN])
    assert result.exit_code == 0, result.output
    (annotation,) = peer.calls("POST", "/api/annotations")
    body = annotation.body
    assert body["dashboardUID"] == "fabbrica-experiments"
    assert body["tags"] == ["fabbrica", "experiment", dataset.experiment]
    finished_ms = int(datetime.fromisoformat(metadata["finished_at"]).timestamp() * 1000)
    assert body["timeEnd"] == finished_ms and body["time"] <= finished_ms
    assert body["text"].startswith(f"experiment {dataset.experiment}: 2 scenarios, 6 runs")


def test_annotate_refuses_what_is_not_an_experiment(tmp_path) -> None:
    (tmp_path / "experiment.json").write_text("{}")
    result = runner.invoke(app, ["grafana", "annotate", str(tmp_path), "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 2 and "not an experiment.json" in result.stderr


def test_experiment_run_adds_its_annotation(peer: Peer, tmp_path) -> None:
    from .conftest import LINE_FILE

    spec = {
        "name": "tiny",
        "line": str(LINE_FILE),
        "design": {"scenarios": [{"id": "as-built"}]},
        "replications": 2,
        "horizon": "1h",
        "warmup": "10min",
        "kpis": ["throughput_per_hour"],
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec))
    command = [
        "experiment",
        "run",
        str(tmp_path / "tiny.yaml"),
        "--out",
        str(tmp_path / "out"),
        "--workers",
        "1",
    ]
    result = runner.invoke(app, [*command, "--grafana-url", peer.url], env={"GRAFANA_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    (annotation,) = peer.calls("POST", "/api/annotations")
    assert annotation.body["tags"] == ["fabbrica", "experiment", "tiny"]
    assert annotation.body["text"] == "experiment tiny: 1 scenarios, 2 runs"
    assert f"annotated tiny on {peer.url}" in result.stderr
    result = runner.invoke(app, [*command, "--grafana-url", peer.url, "--grafana-token", "wrong"])
    assert result.exit_code == 0, result.output  # the results are written; the annotation is not
    assert "warning: no annotation:" in result.stderr and "HTTP 401" in result.stderr
