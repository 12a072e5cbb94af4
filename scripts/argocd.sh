# shellcheck shell=bash
# shellcheck disable=SC2154  # root and pids are the caller's
# A real Argo CD beside the test control plane, from the build of scripts/argocd-build.sh: its
# CRDs, the `argocd` namespace with argocd-cm (our health check merged in exactly as
# docs/gitops-argocd.md tells users to), argocd-secret and the default AppProject; then, as host
# processes on loopback, its own Redis, a Git server (`git daemon`) for the tests' repositories,
# the repo server, the application controller and the API server (for the CLI). Sourced by
# scripts/test.sh, not run.
#
# The controller reaches the cluster as an in-cluster one would (`https://kubernetes.default.svc`
# in an Application's destination) through ARGOCD_FAKE_IN_CLUSTER and the admin kubeconfig.
# It keeps each resource's health in the Application's status (--persist-resource-health) so
# the tests read our health check's message with kubectl; the API server shows it either way.

# Usage: start_argocd DIST RUN_DIR KUBECONFIG KUBECTL
# Appends the pids to the caller's `pids` array. Sets and exports FINAGENT_TEST_ARGOCD (the CLI),
# FINAGENT_TEST_ARGOCD_SERVER (host:port of the API server, plaintext, no auth),
# FINAGENT_TEST_ARGOCD_GIT_ROOT (the folder git daemon serves) and FINAGENT_TEST_ARGOCD_GIT_URL.
start_argocd() {
  local dist="$1" dir="$2" kubeconfig="$3" kubectl="$4"
  local argocd="$dist/bin/argocd"
  local k=("$kubectl" --kubeconfig "$kubeconfig")
  mkdir -p "$dir/git" "$dir/tmp" "$dir/home"

  "${k[@]}" apply --server-side --force-conflicts -f "$dist/crds/application-crd.yaml" -f "$dist/crds/appproject-crd.yaml" >/dev/null
  # `kubectl wait` fails at once on an object whose status has no conditions yet, so poll.
  local crd established
  for crd in applications.argoproj.io appprojects.argoproj.io; do
    for _ in $(seq 1 120); do
      established="$("${k[@]}" get crd "$crd" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null || true)"
      [ "$established" = "True" ] && break
      sleep 0.5
    done
    if [ "$established" != "True" ]; then
      echo "argo cd: the CRD $crd was not established within 60 s" >&2
      return 1
    fi
  done
  "${k[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: argocd}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels: {app.kubernetes.io/name: argocd-cm, app.kubernetes.io/part-of: argocd}
data:
  timeout.reconciliation: 10s
---
apiVersion: v1
kind: Secret
metadata:
  name: argocd-secret
  namespace: argocd
  labels: {app.kubernetes.io/name: argocd-secret, app.kubernetes.io/part-of: argocd}
stringData:
  server.secretkey: "$(openssl rand -hex 32)"
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: default, namespace: argocd}
spec:
  sourceRepos: ["*"]
  destinations: [{server: "*", namespace: "*"}]
  clusterResourceWhitelist: [{group: "*", kind: "*"}]
EOF
  # Our health check, merged as the documentation says.
  "${k[@]}" -n argocd patch configmap argocd-cm --type merge --patch-file "$root/config/argocd/argocd-cm.yaml" >/dev/null

  local redis_port git_port repo_port repo_metrics controller_metrics server_port server_metrics
  redis_port="$(free_port)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --logfile "$dir/argocd-redis.log" --daemonize no &
  pids+=("$!")
  wait_for_port "$redis_port" "argo cd redis" "$dir/argocd-redis.log"

  git_port="$(free_port)"
  git daemon --reuseaddr --listen=127.0.0.1 --port="$git_port" --export-all --base-path="$dir/git" \
    "$dir/git" >"$dir/git-daemon.log" 2>&1 &
  pids+=("$!")
  wait_for_port "$git_port" "git daemon" "$dir/git-daemon.log"

  # The processes share these: no TLS between them on loopback, their own temporary folder and HOME.
  local common=(env "HOME=$dir/home" "TMPDIR=$dir/tmp" "KUBECONFIG=$kubeconfig" ARGOCD_FAKE_IN_CLUSTER=true
    ARGOCD_GPG_ENABLED=false)

  repo_port="$(free_port)"
  repo_metrics="$(free_port)"
  "${common[@]}" ARGOCD_BINARY_NAME=argocd-repo-server "PATH=$dist/bin:$PATH" "$argocd" \
    --address 127.0.0.1 --port "$repo_port" --metrics-address 127.0.0.1 --metrics-port "$repo_metrics" \
    --disable-tls --client-ca-path "" --redis "127.0.0.1:$redis_port" --revision-cache-expiration 10s \
    --loglevel info --logformat text \
    >"$dir/argocd-repo-server.log" 2>&1 &
  pids+=("$!")
  wait_for_port "$repo_port" "argo cd repo server" "$dir/argocd-repo-server.log"

  controller_metrics="$(free_port)"
  "${common[@]}" ARGOCD_BINARY_NAME=argocd-application-controller "$argocd" \
    --namespace argocd --repo-server "127.0.0.1:$repo_port" --repo-server-plaintext \
    --redis "127.0.0.1:$redis_port" --metrics-port "$controller_metrics" \
    --app-resync 10 --app-resync-jitter 0 --self-heal-timeout-seconds 2 \
    --status-processors 4 --operation-processors 4 --persist-resource-health \
    --loglevel info --logformat text >"$dir/argocd-application-controller.log" 2>&1 &
  pids+=("$!")
  wait_for_port "$controller_metrics" "argo cd application controller" "$dir/argocd-application-controller.log"

  server_port="$(free_port)"
  server_metrics="$(free_port)"
  "${common[@]}" ARGOCD_BINARY_NAME=argocd-server "$argocd" \
    --namespace argocd --address 127.0.0.1 --port "$server_port" --metrics-address 127.0.0.1 \
    --metrics-port "$server_metrics" --insecure --disable-auth --repo-server "127.0.0.1:$repo_port" \
    --repo-server-plaintext --redis "127.0.0.1:$redis_port" --staticassets "$dir/tmp" \
    --loglevel info --logformat text >"$dir/argocd-server.log" 2>&1 &
  pids+=("$!")
  wait_for_port "$server_port" "argo cd api server" "$dir/argocd-server.log"

  export FINAGENT_TEST_ARGOCD="$argocd"
  export FINAGENT_TEST_ARGOCD_SERVER="127.0.0.1:$server_port"
  export FINAGENT_TEST_ARGOCD_GIT_ROOT="$dir/git"
  export FINAGENT_TEST_ARGOCD_GIT_URL="git://127.0.0.1:$git_port"
  export FINAGENT_TEST_ARGOCD_CONTROLLER_METRICS="127.0.0.1:$controller_metrics"
}
