"""Grafana for the testbed: dashboards generated from code, file provisioning, and publishing.

- `model`: small builders for dashboards, panels, InfluxQL queries and template variables;
- `line_overview`, `experiments`, `validation`, `connector_health`, `live_twin`: the dashboards;
- `provisioning`: the datasource and dashboard-provider files, and `generate`/`check` for
  everything under `grafana/`;
- `publish`: upload dashboards and the datasource to a running Grafana (grafana-client),
  and annotate experiment runs.

    fabbrica grafana generate            # rewrite grafana/ from this code
    fabbrica grafana publish --url http://127.0.0.1:3000 --token $GRAFANA_TOKEN
"""
