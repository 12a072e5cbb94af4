#!/usr/bin/env bash
# The delivery checks: everything about images, the chart, the workflows and the monitoring that
# can be checked without a container engine or a cluster. Run by scripts/test.sh; runs alone too.
#
#   - the chart's copies of generated files are current (crds/, alerts, dashboards);
#   - hadolint on the three Dockerfiles;
#   - shellcheck on every shell script;
#   - actionlint and the GitHub workflow JSON schema on .github/workflows;
#   - promtool: the alert rules parse and pass their unit tests; every dashboard query parses and
#     every metric named by a dashboard or an alert is one the code registers;
#   - helm lint --strict (default values, every option on, and refused bad values); every value
#     documented in values.yaml and in the chart's README;
#   - helm template, then kubernetes-validate --strict for Kubernetes 1.30 and 1.35 on everything
#     rendered (the Prometheus Operator kinds have no schema there: their rules go to promtool).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

install_debian_packages prometheus shellcheck python3 python3-venv ca-certificates
ensure_test_venv
ensure_cluster_tools
helm="$TOOLS/bin/helm"
chart="charts/finagent-operator"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step "delivery: the chart's copies of generated files are current"
stale=0
check_copy() {
  if ! cmp -s "$1" "$2"; then
    echo "$2 differs from $1; run scripts/generate.sh" >&2
    stale=1
  fi
}
check_copy crds/financialagent.yaml "$chart/files/crds/financialagent.yaml"
check_copy config/prometheus/alerts.yaml "$chart/files/alerts.yaml"
for dashboard in config/grafana/*.json; do
  check_copy "$dashboard" "$chart/files/dashboards/$(basename "$dashboard")"
done
for copy in "$chart"/files/dashboards/*.json; do
  [ -f "config/grafana/$(basename "$copy")" ] || { echo "$copy has no source in config/grafana" >&2; stale=1; }
done
[ "$stale" -eq 0 ]
echo "copies current"

step "delivery: hadolint"
"$VENV/bin/hadolint" --version
dockerfiles=(operator/Dockerfile api-server/Dockerfile ocr-worker/Dockerfile e2e/images/*/Dockerfile)
"$VENV/bin/hadolint" --config .hadolint.yaml "${dockerfiles[@]}"
echo "${#dockerfiles[@]} Dockerfiles clean"

step "delivery: shellcheck"
shellcheck --version | sed -n 2p
shellcheck -x scripts/*.sh e2e/*.sh e2e/images/*/*.sh .ci/run
echo "shell scripts clean"

step "delivery: GitHub workflows (actionlint, JSON schema)"
"$VENV/bin/actionlint" -version | head -n 1
"$VENV/bin/actionlint" -no-color -shellcheck shellcheck
"$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml

step "delivery: alert rules and dashboards (promtool)"
promtool --version 2>&1 | head -n 1
promtool check rules config/prometheus/alerts.yaml
(cd config/prometheus && promtool test rules alerts.test.yaml)
python3 scripts/check_monitoring.py promtool

step "delivery: helm lint --strict"
"$helm" version --short
"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" --values "$chart/ci/everything-values.yaml"
# The values schema refuses what the chart cannot run with.
for bad in replicaCount=0 logFormat=xml image.pullPolicy=Sometimes metrics.service.port=70000 unknownKey=1 watchNamespace=Not_A_Namespace; do
  if "$helm" lint --strict "$chart" --set "$bad" >"$work/lint.log" 2>&1; then
    echo "helm lint accepted --set $bad" >&2
    exit 1
  fi
done
echo "bad values refused"
python3 scripts/check_chart_values.py "$chart"

step "delivery: helm template | kubernetes-validate --strict"
for values in default everything; do
  args=()
  if [ "$values" = everything ]; then args=(--values "$chart/ci/everything-values.yaml"); fi
  "$helm" template finagent-operator "$chart" --namespace finagent-system "${args[@]}" >"$work/$values.yaml"
  # Built-in kinds to kubernetes-validate; the PrometheusRule's rules to promtool.
  "$VENV/bin/python" - "$work/$values.yaml" "$work/$values" <<'PY'
import pathlib, sys, yaml
source, prefix = sys.argv[1], sys.argv[2]
core, rules = [], []
for document in yaml.safe_load_all(open(source)):
    if not document:
        continue
    if document["apiVersion"].startswith("monitoring.coreos.com/"):
        if document["kind"] == "PrometheusRule":
            rules.append(document["spec"])
        continue
    core.append(document)
pathlib.Path(prefix + "-core.yaml").write_text(yaml.safe_dump_all(core))
for index, spec in enumerate(rules):
    pathlib.Path(f"{prefix}-rules-{index}.yaml").write_text(yaml.safe_dump(spec))
print(f"{pathlib.Path(prefix).name} values: {len(core)} objects to validate, {len(rules)} PrometheusRule")
PY
  for version in 1.30.0 1.35.0; do
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$work/$values-core.yaml"
  done
  for rules in "$work/$values"-rules-*.yaml; do
    [ -e "$rules" ] || continue
    promtool check rules "$rules"
  done
done
echo "rendered chart valid for Kubernetes 1.30 and 1.35"

step "delivery checks passed"
