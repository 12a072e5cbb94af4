#!/usr/bin/env bash
# The end-to-end journey on a real cluster, one script for both places it runs:
#   E2E_PLATFORM=kind   (default) kind in the GitHub workflow, ingress-nginx on port 80 (e2e/setup.sh);
#   E2E_PLATFORM=node   the one-node cluster of scripts/node.sh, Traefik on $FINAGENT_INGRESS, the
#                       datastores from the images built there ($FINAGENT_NODE_KEY).
#
# The tests, in order (each prints PASS <platform>_<name> and its time):
#   chart_installs               the chart installs the CRD and the operator, which runs and leads
#   cel_rules_refuse             the API server refuses a resource that breaks a CEL rule
#   ready_under_restricted       a FinancialAgent becomes Ready under the restricted Pod Security
#                                Standard, every pod Running and Ready with a read-only root
#                                (also: only MongoDB and the API's init container hold the MongoDB
#                                root password; the API connects as the platform's own user)
#   ingress_journey              through the Ingress: no /metrics, the web app, register, sign in, upload, read
#                                total 9.00 and date 2018-12-25, the CSV export, and 413 from the
#                                API itself just above the upload limit
#   scaling                      120 uploads scale the workers up, every receipt is read, and the
#                                workers come back down after the window (times printed)
#   network_policies             a pod without the allowed labels reaches neither MongoDB, Redis
#                                nor the workers' or the API's metrics port (it reaches the API's
#                                own port); with the API's labels it reaches the datastores
#   prometheus                   the platform's Prometheus scrapes the API and the workers (up),
#                                and the OCR job counter rose; the operator counts its decisions
#   pod_loss                     API and worker pods deleted during a batch lose no receipt
#   rollback_unready             a real API image that fails its health checks (it cannot reach its
#                                Redis, so it never serves) is rolled back in time, while a
#                                request loop through the Ingress counts its failures
#   rollback_unpullable          an image tag that cannot be pulled is rolled back in time
#
# Expects kubectl pointing at the cluster, helm, curl and jq, and the images
# ghcr.io/finagent/{operator,api-server,ocr-worker}:e2e and api-server:e2e-unready in the cluster.
# On failure it prints what a person would look at first.
# The conditions the tests wait for are functions defined where they are used and called through
# `eventually`, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
platform="${E2E_PLATFORM:-kind}"
host="receipts.e2e.test"
ns="receipts"
operator_ns="finagent-system"
fixture="$root/ocr-worker/tests/fixtures/receipts/000.jpg"
work="$(mktemp -d)"
case "$platform" in
  kind) ingress="127.0.0.1:80" ingress_class=nginx ;;
  node)
    ingress="${FINAGENT_INGRESS:?FINAGENT_INGRESS (address:port of the Ingress) is required on the node}"
    ingress_class=traefik
    node_key="${FINAGENT_NODE_KEY:?FINAGENT_NODE_KEY (the tag of the node images) is required on the node}"
    ;;
  *) echo "E2E_PLATFORM must be kind or node" >&2 && exit 2 ;;
esac
# The rollout deadline of the resource under test (e2e/financialagent.yaml), and the bound on a
# rollback: the deadline, plus a minute for the probes and the reconcile.
progress_deadline=60
rollback_bound=$((progress_deadline + 60))

step() { printf '\n==> %s\n' "$*"; }
# The test running now, and the file ($E2E_RESULT, optional) where a failure is summed up in one
# line, for the caller to print after the diagnostics and the logs.
current_test="setup"
fail() {
  echo "FAILED: $*" >&2
  if [ -n "${E2E_RESULT:-}" ]; then echo "${platform}_$current_test: $*" >"$E2E_RESULT"; fi
  exit 1
}

diagnostics() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    if [ -n "${E2E_RESULT:-}" ] && [ ! -s "$E2E_RESULT" ]; then
      echo "${platform}_$current_test: a command failed (status $status)" >"$E2E_RESULT"
    fi
    step "diagnostics"
    kubectl get financialagents -A -o yaml || true
    kubectl get pods -A -o wide || true
    kubectl -n "$ns" get all,ingress,networkpolicy,pvc -o wide || true
    kubectl -n "$ns" get events --sort-by=.lastTimestamp | tail -n 60 || true
    kubectl -n "$operator_ns" logs deployment/finagent-operator --tail=200 || true
    kubectl -n "$ns" logs deployment/e2e-api-server --tail=100 || true
    kubectl -n "$ns" logs deployment/e2e-ocr-worker --tail=100 || true
  fi
  jobs -p | xargs -r kill 2>/dev/null || true
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

# Runs test $1 (the function test_$1), timing it.
run_test() {
  local name="$1" started=$SECONDS
  current_test="$name"
  step "${platform}_$name"
  "test_$name"
  echo "PASS ${platform}_$name ($((SECONDS - started)) s)"
}

# curl through the Ingress, with the resource's host name.
api() {
  local path="$1"
  shift
  curl -sS --fail-with-body --max-time 30 --connect-to "$host:80:$ingress" "http://$host$path" "$@"
}

agent_field() {
  kubectl -n "$ns" get financialagent e2e -o jsonpath="$1"
}

condition_field() {
  agent_field "{.status.conditions[?(@.type==\"$1\")].$2}"
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
  api "/api/ocr/status/$1" -H "authorization: Bearer $TOKEN"
}

is_done() {
  local status
  fresh_token
  status="$(task_status "$1" | jq -r .status)"
  if [ "$status" = failed ]; then
    fail "task $1 failed"
  fi
  [ "$status" = "done" ]
}

# Uploads $1 unique copies of the fixture, numbered from $2; the task ids go to the array `tasks`.
upload_batch() {
  local count="$1" first="$2" i
  tasks=()
  for i in $(seq "$first" $((first + count - 1))); do
    unique_receipt "$i" "$work/receipt.jpg"
    tasks+=("$(upload "$work/receipt.jpg")")
  done
}

# The platform's Prometheus's HTTP API, path $1, through a port-forward: its NetworkPolicy admits
# only pods of the namespace, and a port-forward enters the pod's own network.
prometheus_api() {
  local port=$((20000 + RANDOM % 20000)) forward status=0
  kubectl -n "$ns" port-forward service/e2e-prometheus "$port:9091" >"$work/forward.log" 2>&1 &
  forward=$!
  for _ in $(seq 1 50); do
    grep -q "Forwarding from" "$work/forward.log" && break
    sleep 0.2
  done
  curl -sS --fail --max-time 10 "http://127.0.0.1:$port$1" || status=$?
  kill "$forward" 2>/dev/null || true
  wait "$forward" 2>/dev/null || true
  return "$status"
}

operator_metrics() {
  kubectl get --raw "/api/v1/namespaces/$operator_ns/services/http:finagent-operator-metrics:9090/proxy/metrics"
}

# The value of the series of operator metric $1 whose labels include every label=value pair given
# after it.
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

# The resource under test: e2e/financialagent.yaml with this platform's ingress class, and on the
# node the datastore images built there.
agent_manifest() {
  local patch
  patch="$(jq -nc --arg class "$ingress_class" '{spec: {ingress: {className: $class}}}')"
  if [ "$platform" = node ]; then
    patch="$(jq -nc --arg class "$ingress_class" --arg key "$node_key" '{spec: {
      ingress: {className: $class},
      redis: {image: ("localhost/finagent/redis:" + $key)},
      mongodb: {image: ("localhost/finagent/mongodb:" + $key)},
      prometheus: {image: ("localhost/finagent/prometheus:" + $key)}}}')"
  fi
  kubectl patch --local --type merge -f "$root/e2e/financialagent.yaml" -p "$patch" -o yaml
}

test_chart_installs() {
  helm upgrade --install finagent-operator "$root/charts/finagent-operator" \
    --namespace "$operator_ns" --create-namespace \
    --set image.tag=e2e --set image.pullPolicy=IfNotPresent --set 'logLevel=info\,finagent_operator=debug' \
    --wait --timeout 5m
  kubectl wait --for=condition=Established crd/financialagents.finagent.io --timeout=60s
  kubectl -n "$operator_ns" rollout status deployment/finagent-operator --timeout=180s
  # It leads, from inside the cluster (its Lease names its pod).
  local pod holder
  pod="$(kubectl -n "$operator_ns" get pods -l app.kubernetes.io/name=finagent-operator -o jsonpath='{.items[0].metadata.name}')"
  leads() {
    holder="$(kubectl -n "$operator_ns" get lease -o jsonpath='{.items[*].spec.holderIdentity}')"
    [[ "$holder" == *"$pod"* ]]
  }
  eventually 60 "the operator pod $pod holds the Lease" leads
  echo "leader: $holder"
}

test_cel_rules_refuse() {
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
  kubectl label namespace "$ns" --overwrite \
    pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted
  if kubectl apply -f "$root/e2e/invalid-financialagent.yaml" 2>"$work/invalid.err"; then
    fail "an invalid FinancialAgent was accepted"
  fi
  grep -q "minReplicas must not exceed maxReplicas" "$work/invalid.err" ||
    fail "unexpected refusal: $(cat "$work/invalid.err")"
  echo "refused: $(cat "$work/invalid.err")"
}

test_ready_under_restricted() {
  agent_manifest | kubectl apply -f -
  kubectl -n "$ns" wait financialagent/e2e --for=condition=Ready --timeout=600s
  kubectl -n "$ns" get financialagent e2e
  # Every pod runs real containers, is Ready, and has a read-only root filesystem.
  kubectl -n "$ns" get pods -o json >"$work/pods.json"
  jq -r '.items[] | "\(.metadata.name) \(.status.phase) ready=\([.status.conditions[] | select(.type == "Ready") | .status][0])"' \
    "$work/pods.json"
  jq -e '[.items[] | select(.status.phase != "Running" or ([.status.conditions[] | select(.type == "Ready") | .status][0] != "True"))] | length == 0' \
    "$work/pods.json" >/dev/null || fail "not every pod is Running and Ready"
  # The official mongo image's entrypoint writes outside its volumes, so MongoDB alone keeps a
  # writable root (docs/security.md).
  local writable
  writable="$(jq -r '[.items[] | .spec.containers[] | select(.securityContext.readOnlyRootFilesystem != true) | .name] | unique | join(" ")' "$work/pods.json")"
  [ -z "$writable" ] || [ "$writable" = mongodb ] || fail "containers with a writable root filesystem: $writable"
  for component in api-server ocr-worker redis mongodb prometheus; do
    jq -e --arg c "$component" '[.items[] | select(.metadata.labels["app.kubernetes.io/component"] == $c)] | length > 0' \
      "$work/pods.json" >/dev/null || fail "no $component pod"
  done
  # The API and the workers connect to MongoDB as the platform's own user: only MongoDB and the
  # API's init container, which made sure of that user, hold the root password.
  local holders api_pod
  holders="$(jq -r '[.items[] | .metadata.name as $pod | (.spec.initContainers // []) + .spec.containers | .[]
    | select([.env[]? | .valueFrom.secretKeyRef.key] | index("mongodb-password")) | .name] | unique | join(" ")' "$work/pods.json")"
  [ "$holders" = "mongodb mongodb-user" ] || fail "containers given the MongoDB root password: $holders"
  api_pod="$(jq -r '[.items[] | select(.metadata.labels["app.kubernetes.io/component"] == "api-server")][0].metadata.name' "$work/pods.json")"
  kubectl -n "$ns" logs "$api_pod" -c mongodb-user | grep -E 'MongoDB user ready|created the MongoDB user without roles' \
    || fail "the init container did not make sure of the MongoDB user"
  GOOD_REVISION="$(agent_field '{.status.revision.lastKnownGood}')"
  echo "last known good revision: $GOOD_REVISION"
}

test_ingress_journey() {
  eventually 180 "the API answers through the Ingress" api /healthz -o /dev/null
  # The metrics are on the admin port, which the Ingress does not reach.
  local metrics_status
  metrics_status="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 --connect-to "$host:80:$ingress" "http://$host/metrics")"
  [ "$metrics_status" = 404 ] || fail "/metrics answered $metrics_status through the Ingress"
  api / -H 'accept: text/html' -o "$work/index.html"
  grep -qi "<html" "$work/index.html" || fail "/ is not the web app's HTML"
  api /api/auth/register -H 'content-type: application/json' -o /dev/null \
    -d '{"username": "e2e-user", "email": "e2e@example.com", "password": "a long end-to-end password"}'
  login
  local task
  task="$(upload "$fixture")"
  echo "task: $task"
  eventually 300 "the receipt is read" is_done "$task"
  api "/api/ocr/result/$task" -H "authorization: Bearer $TOKEN" >"$work/result.json"
  jq -c '.result | {merchant: .merchant.name, date, total, currency}' "$work/result.json"
  [ "$(jq -r .result.total "$work/result.json")" = "9.00" ] || fail "total is not 9.00"
  [ "$(jq -r .result.date "$work/result.json")" = "2018-12-25" ] || fail "date is not 2018-12-25"
  api /api/receipts/export.csv -H "authorization: Bearer $TOKEN" -D "$work/export.headers" -o "$work/export.csv"
  grep -qi "content-type: text/csv" "$work/export.headers" || fail "the export is not CSV: $(cat "$work/export.headers")"
  [ "$(wc -l <"$work/export.csv")" -ge 2 ] || fail "the export has no receipt row"
  echo "CSV export: $(head -1 "$work/export.csv")"
  # The largest upload passes the Ingress and reaches the API; one byte more gets the API's own
  # problem+json 413, not the proxy's page.
  local limit=$((25 * 1024 * 1024)) code
  for size in "$limit" $((limit + 1)); do
    { printf '\xff\xd8\xff\xe0'; head -c $((size - 4)) /dev/zero; } >"$work/large.jpg"
    code="$(curl -sS --max-time 120 --connect-to "$host:80:$ingress" -o "$work/large.out" -D "$work/large.headers" \
      -w '%{http_code}' -H "authorization: Bearer $TOKEN" -F "file=@$work/large.jpg;type=image/jpeg" \
      "http://$host/api/ocr/process")"
    echo "upload of $size bytes: $code $(grep -i '^content-type' "$work/large.headers" | tr -d '\r')"
    grep -qi "content-type: application/problem+json" "$work/large.headers" ||
      fail "the answer to $size bytes is not the API's: $(head -c 300 "$work/large.out")"
    if [ "$size" -eq "$limit" ]; then
      [ "$code" != 413 ] || fail "an upload of exactly the limit was refused as too large"
    else
      [ "$code" = 413 ] || fail "an upload above the limit got $code, not 413"
    fi
  done
  # The edge enforces its own body size (the operator's proxy-body-size annotation, 26m): a body
  # well above it is refused by the proxy, not streamed to the API.
  head -c $((28 * 1024 * 1024)) /dev/zero >"$work/large.jpg"
  code="$(curl -sS --max-time 120 --connect-to "$host:80:$ingress" -o "$work/large.out" -D "$work/large.headers" \
    -w '%{http_code}' -H "authorization: Bearer $TOKEN" -F "file=@$work/large.jpg;type=image/jpeg" \
    "http://$host/api/ocr/process" || true)"
  echo "upload of 28 MiB: $code $(grep -i '^content-type' "$work/large.headers" | tr -d '\r')"
  [ "$code" = 413 ] || fail "the Ingress let a 28 MiB body through (got $code)"
  if grep -qi "content-type: application/problem+json" "$work/large.headers"; then
    fail "the API, not the Ingress, refused the 28 MiB body: the Ingress's body size is not in force"
  fi
}

test_scaling() {
  local backlog=120 started=$SECONDS
  login
  upload_batch "$backlog" 1
  local uploaded=$((SECONDS - started))
  echo "uploaded $backlog receipts in ${uploaded}s"
  scaled_up() {
    local desired
    desired="$(agent_field '{.status.workers.desiredReplicas}')"
    echo "queue depth $(agent_field '{.status.workers.queueDepth}'), desired workers ${desired:-?}"
    [ "${desired:-0}" -gt 1 ]
  }
  eventually 180 "the operator scales the workers up" scaled_up
  local up_at=$((SECONDS - started))
  local replicas
  replicas="$(kubectl -n "$ns" get deployment e2e-ocr-worker -o jsonpath='{.spec.replicas}')"
  [ "$replicas" -gt 1 ] || fail "the workers' Deployment has $replicas replicas"
  all_read() {
    local pending=0 task
    for task in "${tasks[@]}"; do
      is_done "$task" || pending=$((pending + 1))
    done
    echo "$pending of $backlog receipts still pending, $(kubectl -n "$ns" get deployment e2e-ocr-worker -o jsonpath='{.status.readyReplicas}') workers ready"
    [ "$pending" -eq 0 ]
  }
  eventually 900 "every receipt of the backlog is read" all_read
  local read_at=$((SECONDS - started))
  scaled_down() {
    [ "$(kubectl -n "$ns" get deployment e2e-ocr-worker -o jsonpath='{.spec.replicas}')" = 1 ]
  }
  eventually 300 "the workers come back down after the stabilization window" scaled_down
  local down_at=$((SECONDS - started))
  kubectl -n "$ns" get events --field-selector reason=Scaled -o custom-columns=TIME:.lastTimestamp,MESSAGE:.message || true
  echo "scaling: $backlog uploads in ${uploaded}s; workers scaled up at ${up_at}s (to $replicas); all read at ${read_at}s; back to 1 at ${down_at}s"
}

# Starts a pod in the namespace that tries a TCP connection to each host:port given, with the
# labels of JSON object $2, and prints "host:port open|closed" per target. Pod name $1.
probe_pod() {
  local name="$1" labels="$2" image
  shift 2
  image="$(kubectl -n "$ns" get deployment e2e-api-server -o jsonpath='{.spec.template.spec.containers[0].image}')"
  local script="" target
  for target in "$@"; do
    script+="if timeout 5 bash -c '</dev/tcp/${target%:*}/${target#*:}' 2>/dev/null; then echo $target open; else echo $target closed; fi; "
  done
  jq -n --arg name "$name" --arg image "$image" --arg script "$script" --argjson labels "$labels" '{
    apiVersion: "v1", kind: "Pod",
    metadata: {name: $name, labels: $labels},
    spec: {restartPolicy: "Never", automountServiceAccountToken: false,
      securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: "RuntimeDefault"}},
      containers: [{name: "probe", image: $image, command: ["bash", "-c", $script],
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: ["ALL"]}}}]}}' |
    kubectl -n "$ns" apply -f - >/dev/null
  finished() {
    local phase
    phase="$(kubectl -n "$ns" get pod "$name" -o jsonpath='{.status.phase}')"
    [ "$phase" = Succeeded ] || [ "$phase" = Failed ]
  }
  eventually 120 "the probe pod $name finishes" finished
  kubectl -n "$ns" logs "$name"
  kubectl -n "$ns" delete pod "$name" --wait=false >/dev/null
}

test_network_policies() {
  local worker_ip api_ip targets api_labels
  worker_ip="$(kubectl -n "$ns" get pods -l app.kubernetes.io/component=ocr-worker -o jsonpath='{.items[0].status.podIP}')"
  api_ip="$(kubectl -n "$ns" get pods -l app.kubernetes.io/component=api-server -o jsonpath='{.items[0].status.podIP}')"
  targets=(e2e-mongodb:27017 e2e-redis:6379 "$worker_ip:9090" "$api_ip:9090")
  probe_pod stranger '{"app": "stranger"}' "${targets[@]}" "$api_ip:8000" | tee "$work/stranger.txt"
  for target in "${targets[@]}"; do
    grep -qx "$target closed" "$work/stranger.txt" || fail "a pod without the allowed labels reached $target"
  done
  grep -qx "$api_ip:8000 open" "$work/stranger.txt" || fail "the API's own port is closed to other pods"
  # The same pod with the API's labels gets through to the datastores: the policies, not the
  # network, made the difference.
  api_labels="$(kubectl -n "$ns" get deployment e2e-api-server -o jsonpath='{.spec.selector.matchLabels}')"
  probe_pod as-api "$api_labels" e2e-mongodb:27017 e2e-redis:6379 | tee "$work/as-api.txt"
  grep -qx "e2e-mongodb:27017 open" "$work/as-api.txt" || fail "a pod with the API's labels cannot reach MongoDB"
  grep -qx "e2e-redis:6379 open" "$work/as-api.txt" || fail "a pod with the API's labels cannot reach Redis"
}

test_prometheus() {
  targets_up() {
    prometheus_api /api/v1/targets >"$work/targets.json" || return 1
    jq -e '[.data.activeTargets[] | select(.health == "up") | .labels.job] | (index("api-server") != null) and (index("ocr-worker") != null)' \
      "$work/targets.json" >/dev/null
  }
  eventually 180 "Prometheus scrapes the API and the workers" targets_up
  jq -r '.data.activeTargets[] | "\(.labels.job) \(.scrapeUrl) \(.health)"' "$work/targets.json"
  jq -e '[.data.activeTargets[] | select(.labels.job == "api-server") | .labels.finagent_instance] | index("e2e") != null' \
    "$work/targets.json" >/dev/null || fail "scraped series lack the finagent_instance label"
  prometheus_api /api/v1/rules >"$work/rules.json"
  jq -e '[.data.groups[].rules[].name] | index("FinagentQueueBacklog") != null' "$work/rules.json" >/dev/null ||
    fail "the platform's Prometheus has not loaded the alert rules"
  # The workers that read the backlog may be gone since the scale-down: each series' highest value
  # of the last hour counts.
  jobs_counted() {
    prometheus_api "/api/v1/query?query=sum(max_over_time(finagent_ocr_jobs_total%5B1h%5D))" >"$work/jobs.json" || return 1
    jq -e '(.data.result[0].value[1] // "0" | tonumber) >= 100' "$work/jobs.json" >/dev/null
  }
  eventually 120 "the OCR job counter counts the backlog" jobs_counted
  echo "OCR jobs counted by Prometheus: $(jq -r '.data.result[0].value[1]' "$work/jobs.json")"
  [ "$(metric_value finagent_operator_leader)" = 1 ] || fail "no leading operator replica"
  local scale_ups
  scale_ups="$(metric_value finagent_operator_scaling_decisions_total 'direction="up"' "financialagent=\"$ns/e2e\"")"
  echo "scale-up decisions counted by the operator: $scale_ups"
  [ "${scale_ups%.*}" -ge 1 ] || fail "no scale-up counted"
}

test_pod_loss() {
  login
  local batch=20
  upload_batch "$batch" 1001
  # One API pod and one worker pod go away while the batch is queued and being read.
  local component pods
  for component in ocr-worker api-server; do
    pods="$(kubectl -n "$ns" get pod -l "app.kubernetes.io/component=$component" -o name)"
    [ -n "$pods" ] || fail "no $component pod to delete"
    kubectl -n "$ns" delete "${pods%%$'\n'*}" --wait=false
  done
  settled() {
    local pending=0 task status
    fresh_token
    for task in "${tasks[@]}"; do
      # While the API's only pod is replaced, the Ingress answers 502 or 503: not settled yet.
      status="$(task_status "$task" 2>/dev/null)" || status='{}'

      case "$(jq -r .status <<<"$status")" in
        done) ;;
        failed) [ -n "$(jq -r '.failure // empty' <<<"$status")" ] || fail "task $task failed without a reason" ;;
        *) pending=$((pending + 1)) ;;
      esac
    done
    echo "$pending of $batch receipts not settled"
    [ "$pending" -eq 0 ]
  }
  eventually 600 "every receipt of the batch ends done or failed with a reason" settled
}

# A request loop through the Ingress in the background: one /healthz and one authenticated read a
# second, counting failures in $work/loop.failures until $work/loop.stop exists.
start_request_loop() {
  rm -f "$work/loop.stop"
  echo 0 >"$work/loop.failures"
  echo 0 >"$work/loop.requests"
  (
    local failures=0 requests=0
    while [ ! -e "$work/loop.stop" ]; do
      for path in /healthz /api/receipts; do
        requests=$((requests + 1))
        if ! curl -sS --fail --max-time 10 --connect-to "$host:80:$ingress" -o /dev/null \
          -H "authorization: Bearer $TOKEN" "http://$host$path" 2>>"$work/loop.errors"; then
          failures=$((failures + 1))
        fi
      done
      echo "$failures" >"$work/loop.failures"
      echo "$requests" >"$work/loop.requests"
      sleep 1
    done
  ) &
  LOOP_PID=$!
}

stop_request_loop() {
  touch "$work/loop.stop"
  wait "$LOOP_PID" 2>/dev/null || true
}

# Rolls out $1 (a JSON merge patch of the spec) and checks it is rolled back within the bound while
# the API keeps answering; $2 names the case.
rollback_case() {
  local patch="$1" case="$2"
  [ "$(condition_field Ready status)" = True ] || fail "not Ready before the broken rollout ($case)"
  login
  start_request_loop
  local started=$SECONDS generation
  kubectl -n "$ns" patch financialagent e2e --type merge -p "$patch"
  generation="$(agent_field '{.metadata.generation}')"
  rolled_back() {
    [ "$(condition_field RolledBack status)" = True ] &&
      [ "$(condition_field RolledBack observedGeneration)" = "$generation" ]
  }
  eventually "$rollback_bound" "the operator rolls back the $case revision within ${rollback_bound}s" rolled_back
  local rolled_back_after=$((SECONDS - started))
  echo "$case: rolled back after ${rolled_back_after}s: $(condition_field RolledBack message)"
  kubectl -n "$ns" rollout status deployment/e2e-api-server --timeout=300s
  for deployment in e2e-api-server e2e-ocr-worker; do
    image="$(kubectl -n "$ns" get deployment "$deployment" -o jsonpath='{.spec.template.spec.containers[0].image}')"
    case "$image" in
      *:e2e) echo "$deployment runs $image again" ;;
      *) fail "$deployment runs $image after the rollback" ;;
    esac
  done
  [ -n "$(agent_field '{.status.revision.failed}')" ] || fail "the failed revision is not recorded"
  sleep 5
  stop_request_loop
  local failures requests
  failures="$(cat "$work/loop.failures")" requests="$(cat "$work/loop.requests")"
  echo "$case: $failures of $requests requests through the Ingress failed during the rollout"
  if [ "$failures" -gt 0 ]; then
    sort "$work/loop.errors" | uniq -c | head -5
  fi
  [ "$failures" -eq 0 ] || fail "$failures requests failed during the $case rollout"
}

test_rollback_unready() {
  rollback_case '{"spec": {"apiServer": {"image": "ghcr.io/finagent/api-server:e2e-unready"}}}' unready
  # Back to the good image by a spec change, which the operator takes as a new revision.
  kubectl -n "$ns" patch financialagent e2e --type json -p '[{"op": "remove", "path": "/spec/apiServer/image"}]'
  kubectl -n "$ns" wait financialagent/e2e --for=condition=Ready --timeout=300s
}

test_rollback_unpullable() {
  rollback_case '{"spec": {"version": "e2e-not-pullable"}}' unpullable
  local rollbacks
  rollbacks="$(metric_value finagent_operator_rollbacks_total "financialagent=\"$ns/e2e\"")"
  echo "rollbacks counted: $rollbacks"
  [ "${rollbacks%.*}" -ge 2 ] || fail "the rollbacks are not counted"
}

tests=(chart_installs cel_rules_refuse ready_under_restricted ingress_journey scaling network_policies
  prometheus pod_loss rollback_unready rollback_unpullable)
if [ -n "${E2E_TESTS:-}" ]; then
  read -r -a tests <<<"$E2E_TESTS"
fi
started=$SECONDS
for test in "${tests[@]}"; do
  run_test "$test"
done
step "end-to-end tests passed on $platform in $((SECONDS - started)) s"
