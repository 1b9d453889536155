"""Publishing to a running Grafana over its HTTP API, through grafana-client.

`publish` creates the `fabbrica` folder if needed, creates or updates the InfluxDB datasource
(the provisioning file's entry with the environment filled in) and uploads the
dashboards (the provisioning JSON) with `overwrite`, so running it again updates them.
`annotate_experiment` marks an experiment run on the experiments dashboard.

    api = connect("http://127.0.0.1:3000", token)
    publish(api, {"INFLUX_URL": "http://influxdb:8086", "INFLUX_DATABASE": "plant", "INFLUX_TOKEN": "..."})
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from fabbrica.grafana import experiments
from fabbrica.grafana.model import DATASOURCE_UID
from fabbrica.grafana.provisioning import FOLDER_TITLE, FOLDER_UID, dashboards, datasource

log = logging.getLogger(__name__)
MESSAGE = "fabbrica grafana publish"


def connect(url: str, token: str | None, timeout: float = 10.0) -> GrafanaApi:
    """A client for the Grafana at `url` (a service-account token, or user:password in the URL)."""
    return GrafanaApi.from_url(url, credential=token or None, timeout=timeout)


def _missing(exc: GrafanaClientError) -> bool:
    return getattr(exc, "status_code", None) == 404


def ensure_folder(api: GrafanaApi) -> None:
    try:
        api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        log.info("created folder %s", FOLDER_TITLE)


def put_datasource(api: GrafanaApi, environ: Mapping[str, str]) -> str:
    """Create or update the datasource; "created" or "updated"."""
    payload = datasource(environ)
    try:
        api.datasource.get_datasource_by_uid(DATASOURCE_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        api.datasource.create_datasource(payload)
        return "created"
    api.datasource.update_datasource_by_uid(DATASOURCE_UID, payload)
    return "updated"


def put_dashboards(api: GrafanaApi) -> list[str]:
    """Upload every dashboard into the fabbrica folder; their URLs (as Grafana answers them)."""
    urls = []
    for board in dashboards().values():
        answer = api.dashboard.update_dashboard(
            {"dashboard": board, "folderUid": FOLDER_UID, "overwrite": True, "message": MESSAGE}
        )
        urls.append(str(answer.get("url", board["uid"])) if isinstance(answer, dict) else board["uid"])
    return urls


def publish(api: GrafanaApi, environ: Mapping[str, str]) -> dict[str, Any]:
    """Folder, datasource and dashboards; a summary of what was done."""
    ensure_folder(api)
    action = put_datasource(api, environ)
    urls = put_dashboards(api)
    return {"datasource": action, "dashboards": urls}


def annotate_experiment(api: GrafanaApi, metadata: Mapping[str, Any]) -> Any:
    """An annotation on the experiments dashboard spanning the run (from experiment.json)."""
    finished = datetime.fromisoformat(str(metadata["finished_at"]))
    end_ms = int(finished.timestamp() * 1000)
    start_ms = end_ms - int(float(metadata.get("wall_s", 0.0)) * 1000)
    scenarios = len(metadata.get("design", {}).get("scenarios", []))
    text = f"experiment {metadata['experiment']}: {scenarios} scenarios, {metadata.get('runs', 0)} runs" + (
        " (interrupted)" if metadata.get("interrupted") else ""
    )
    return api.annotations.add_annotation(
        dashboard_uid=experiments.UID,
        time_from=start_ms,
        time_to=max(end_ms, start_ms),
        tags=["fabbrica", "experiment", str(metadata["experiment"])],
        text=text,
    )


def try_annotate(url: str, token: str | None, metadata: Mapping[str, Any]) -> tuple[bool, str]:
    """Annotate an experiment run; (done, one line saying what happened), never an exception."""
    from grafana_client.client import GrafanaException

    try:
        annotate_experiment(connect(url, token), metadata)
    except GrafanaException as exc:
        return False, f"{url}: HTTP {exc.status_code}: {exc.message}"
    except OSError as exc:
        return False, f"{url}: cannot connect: {exc}"
    return True, f"annotated {metadata['experiment']} on {url}"
