#!/usr/bin/env bash
# Regenerates every generated file: the CRD from the operator's types, and the Helm chart's copies
# of the CRD, the alert rules and the dashboards (a chart cannot read files outside its folder).
# CI runs this and fails when it changes anything.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
chart="charts/finagent-operator"
cargo run --quiet --locked -p finagent-operator -- crd --output crds/financialagent.yaml
cp crds/financialagent.yaml "$chart/files/crds/financialagent.yaml"
cp config/prometheus/alerts.yaml "$chart/files/alerts.yaml"
rm -f "$chart"/files/dashboards/*.json
cp config/grafana/*.json "$chart/files/dashboards/"
echo "generated: crds/financialagent.yaml and the chart's copies"
