#!/usr/bin/env bash
# End-to-end tests on a real cluster (kind in the GitHub workflow; see e2e/README.md):
#
#   1. the chart installs the CRD and the operator, which becomes ready;
#   2. the API server enforces the CRD's CEL rules (an invalid resource is refused);
#   3. a FinancialAgent in a namespace that enforces the "restricted" Pod Security Standard
#      becomes Ready;
#   4. through the ingress: register, sign in, upload a receipt, read its structured result;
#   5. a queue backlog makes the operator scale the workers up, and every receipt is read;
#   6. the platform's Prometheus scrapes the API and the workers and evaluates the platform's
#      alert rules, and the operator's metrics record its decisions;
#   7. a broken image tag is rolled back to the last good revision, and the API keeps answering.
#
# Expects kubectl pointing at the cluster, helm, curl and jq, and the images
# ghcr.io/finagent/{operator,api-server,ocr-worker}:e2e loaded into the cluster (e2e/setup.sh).
# On failure it prints what a person would look at first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host="receipts.e2e.test"
ns="receipts"
operator_ns="finagent-system"
fixture="$root/ocr-worker/tests/fixtures/receipts/000.jpg"
work="$(mktemp -d)"

step() { printf '\n==> %s\n' "$*"; }
fail() {
  echo "FAILED: $*" >&2
  exit 1
}

diagnostics() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    step "diagnostics"
    kubectl get financialagents -A -o yaml || true
    kubectl -n "$ns" get all,ingress,networkpolicy,pvc -o wide || true
    kubectl -n "$ns" get events --sort-by=.lastTimestamp | tail -n 60 || true
    kubectl -n "$operator_ns" logs deployment/finagent-operator --tail=200 || true
    kubectl -n "$ns" logs deployment/e2e-api-server --tail=100 || true
    kubectl -n "$ns" logs deployment/e2e-ocr-worker --tail=100 || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap diagnostics EXIT

# Runs "$@" every 2 s until it succeeds, for at most $1 seconds; fails with $2.
eventually() {
  local timeout="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "$what (after ${timeout}s)"
    fi
    sleep 2
  done
}

# curl through the ingress controller published on the runner's port 80.
api() {
  local path="$1"
  shift
  curl -sS --fail-with-body --max-time 30 --resolve "$host:80:127.0.0.1" "http://$host$path" "$@"
}

agent_field() {
  kubectl -n "$ns" get financialagent e2e -o jsonpath="$1"
}

login() {
  TOKEN="$(api /api/auth/login -H 'content-type: application/json' \
    -d '{"username": "e2e-user", "password": "a long end-to-end password"}' | jq -r .access_token)"
  if [ -z "$TOKEN" ] || [ "$TOKEN" = null ]; then
    fail "no access token"
  fi
  LOGGED_IN_AT=$SECONDS
}

# Access tokens live 15 minutes; long waits sign in again after 10.
fresh_token() {
  if [ $((SECONDS - LOGGED_IN_AT)) -gt 600 ]; then
    login
  fi
}

# Writes copy $1 of the fixture, made unique by a JPEG comment right after the start marker, to $2.
unique_receipt() {
  { printf '\xff\xd8\xff\xfe\x00\x0e'; printf 'e2e-%08d' "$1"; tail -c +3 "$fixture"; } >"$2"
}

upload() {
  api /api/ocr/process -H "authorization: Bearer $TOKEN" -F "file=@$1;type=image/jpeg" | jq -r .task_id
}

task_status() {
  api "/api/ocr/status/$1" -H "authorization: Bearer $TOKEN" | jq -r .status
}

is_done() {
  local status
  fresh_token
  status="$(task_status "$1")"
  if [ "$status" = failed ]; then
    fail "task $1 failed"
  fi
  [ "$status" = "done" ]
}

step "1. the chart installs the CRD and the operator"
helm upgrade --install finagent-operator "$root/charts/finagent-operator" \
  --namespace "$operator_ns" --create-namespace \
  --set image.tag=e2e --set image.pullPolicy=IfNotPresent --set 'logLevel=info\,finagent_operator=debug' \
  --wait --timeout 5m
kubectl wait --for=condition=Established crd/financialagents.finagent.io --timeout=60s
kubectl -n "$operator_ns" rollout status deployment/finagent-operator --timeout=180s

step "2. the API server refuses a resource that breaks a CEL rule"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$ns" --overwrite \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted
if kubectl apply -f "$root/e2e/invalid-financialagent.yaml" 2>"$work/invalid.err"; then
  fail "an invalid FinancialAgent was accepted"
fi
grep -q "minReplicas must not exceed maxReplicas" "$work/invalid.err" ||
  fail "unexpected refusal: $(cat "$work/invalid.err")"
echo "refused: $(cat "$work/invalid.err")"

step "3. a FinancialAgent becomes Ready under the restricted Pod Security Standard"
kubectl apply -f "$root/e2e/financialagent.yaml"
kubectl -n "$ns" wait financialagent/e2e --for=condition=Ready --timeout=600s
kubectl -n "$ns" get financialagent e2e
good_revision="$(agent_field '{.status.revision.lastKnownGood}')"
echo "last known good revision: $good_revision"

step "4. through the ingress: register, sign in, upload, read the result"
eventually 180 "the API answers through the ingress" api /healthz -o /dev/null
api /api/auth/register -H 'content-type: application/json' -o /dev/null \
  -d '{"username": "e2e-user", "email": "e2e@example.com", "password": "a long end-to-end password"}'
login
task="$(upload "$fixture")"
echo "task: $task"
eventually 180 "the receipt is read" is_done "$task"
api "/api/ocr/result/$task" -H "authorization: Bearer $TOKEN" >"$work/result.json"
jq -c '.result | {merchant: .merchant.name, date, total, currency}' "$work/result.json"
[ "$(jq -r .result.total "$work/result.json")" = "9.00" ] || fail "total is not 9.00"
[ "$(jq -r .result.date "$work/result.json")" = "2018-12-25" ] || fail "date is not 2018-12-25"

step "5. a backlog scales the workers up, and every receipt is read"
backlog=120
tasks=()
for i in $(seq 1 "$backlog"); do
  unique_receipt "$i" "$work/receipt.jpg"
  tasks+=("$(upload "$work/receipt.jpg")")
done
echo "uploaded $backlog receipts"
scaled_up() {
  local desired
  desired="$(agent_field '{.status.workers.desiredReplicas}')"
  echo "queue depth $(agent_field '{.status.workers.queueDepth}'), desired workers ${desired:-?}"
  [ "${desired:-0}" -gt 1 ]
}
eventually 180 "the operator scales the workers up" scaled_up
replicas="$(kubectl -n "$ns" get deployment e2e-ocr-worker -o jsonpath='{.spec.replicas}')"
[ "$replicas" -gt 1 ] || fail "the workers' Deployment has $replicas replicas"
kubectl -n "$ns" get events --field-selector reason=Scaled -o custom-columns=TIME:.lastTimestamp,MESSAGE:.message || true
login
all_read() {
  local pending=0 task
  for task in "${tasks[@]}"; do
    is_done "$task" || pending=$((pending + 1))
  done
  echo "$pending of $backlog receipts still pending"
  [ "$pending" -eq 0 ]
}
eventually 900 "every receipt of the backlog is read" all_read

step "6. Prometheus scrapes the platform; the operator's metrics record its decisions"
targets_up() {
  kubectl get --raw "/api/v1/namespaces/$ns/services/http:e2e-prometheus:9091/proxy/api/v1/targets" >"$work/targets.json" || return 1
  jq -e '[.data.activeTargets[] | select(.health == "up") | .labels.job] | (index("api-server") != null) and (index("ocr-worker") != null)' \
    "$work/targets.json" >/dev/null
}
eventually 120 "Prometheus scrapes the API and the workers" targets_up
kubectl get --raw "/api/v1/namespaces/$ns/services/http:e2e-prometheus:9091/proxy/api/v1/rules" >"$work/rules.json"
jq -e '[.data.groups[].rules[].name] | index("FinagentQueueBacklog") != null' "$work/rules.json" >/dev/null ||
  fail "the platform's Prometheus has not loaded the alert rules"
jq -e '[.data.activeTargets[] | select(.labels.job == "api-server") | .labels.finagent_instance] | index("e2e") != null' \
  "$work/targets.json" >/dev/null || fail "scraped series lack the finagent_instance label"
operator_metrics() {
  kubectl get --raw "/api/v1/namespaces/$operator_ns/services/http:finagent-operator-metrics:9090/proxy/metrics"
}
# The value of the series of metric $1 whose labels include every label=value pair given after it.
metric_value() {
  local metric="$1" line pair
  shift
  while read -r line; do
    case "$line" in "$metric{"* | "$metric "*) ;; *) continue ;; esac
    for pair in "$@"; do
      case "$line" in *"$pair"*) ;; *) continue 2 ;; esac
    done
    echo "${line##* }"
    return
  done < <(operator_metrics)
  echo 0
}
[ "$(metric_value finagent_operator_leader)" = 1 ] || fail "no leading operator replica"
scale_ups="$(metric_value finagent_operator_scaling_decisions_total 'direction="up"' "financialagent=\"$ns/e2e\"")"
echo "scale-up decisions counted: $scale_ups"
[ "${scale_ups%.*}" -ge 1 ] || fail "no scale-up counted"

step "7. a broken image tag is rolled back"
condition_field() {
  agent_field "{.status.conditions[?(@.type==\"$1\")].$2}"
}
[ "$(condition_field Ready status)" = True ] || fail "not Ready before the broken rollout"
[ "$(condition_field RolledBack status)" = False ] || fail "RolledBack before the broken rollout"
kubectl -n "$ns" patch financialagent e2e --type merge -p '{"spec": {"version": "e2e-broken"}}'
generation="$(agent_field '{.metadata.generation}')"
rolled_back() {
  [ "$(condition_field RolledBack status)" = True ] &&
    [ "$(condition_field RolledBack observedGeneration)" = "$generation" ]
}
eventually 420 "the operator rolls the broken revision back" rolled_back
kubectl -n "$ns" get financialagent e2e -o jsonpath='{.status.conditions[?(@.type=="RolledBack")].message}{"\n"}'
for deployment in e2e-api-server e2e-ocr-worker; do
  image="$(kubectl -n "$ns" get deployment "$deployment" -o jsonpath='{.spec.template.spec.containers[0].image}')"
  case "$image" in
    *:e2e) echo "$deployment runs $image again" ;;
    *) fail "$deployment runs $image after the rollback" ;;
  esac
done
[ -n "$(agent_field '{.status.revision.failed}')" ] || fail "the failed revision is not recorded"
kubectl -n "$ns" rollout status deployment/e2e-api-server --timeout=300s
eventually 120 "the API answers after the rollback" api /healthz -o /dev/null
rollbacks="$(metric_value finagent_operator_rollbacks_total "financialagent=\"$ns/e2e\"")"
echo "rollbacks counted: $rollbacks"
[ "${rollbacks%.*}" -ge 1 ] || fail "the rollback is not counted"

step "end-to-end tests passed"
