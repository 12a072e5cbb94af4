#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine or a warm one.
#
# 1. installs what the tests need and is missing (Debian packages; a virtualenv under target/ with
#    the MongoDB-wire test server and the other PyPI test tools);
# 2. builds the test Kubernetes control plane from Go modules once (scripts/controlplane-build.sh;
#    cached under ~/.cache/finagent, about 11 minutes the first time on 2 cores, seconds after);
# 3. starts Redis and the MongoDB-wire server on free loopback ports and hands their URLs to the
#    tests (FINAGENT_TEST_REDIS_URL, FINAGENT_TEST_MONGODB_URL), and the control plane (etcd,
#    kube-apiserver, kube-controller-manager, kube-scheduler, kwok; FINAGENT_TEST_KUBECONFIG);
#    The browser tests (browser_*) get Debian's chromium and the npm packages of e2e/browser.
# 4. runs cargo fmt --check, cargo clippy --all-targets -D warnings, the structure check
#    (scripts/check_structure.py: module circles, file length, the layout table), the delivery checks
#    (scripts/check-delivery.sh: chart, images, workflows, alerts and dashboards), every test (the
#    fuzz targets of fuzz/ among them, in process for a few seconds each; scripts/fuzz.sh is the
#    long AFL++ run), and
#    then the cluster tier (tests named cluster_*, the real operator against the control plane;
#    cluster_argocd_*: a real Argo CD, built from its Go modules by scripts/argocd-build.sh and
#    cached like the control plane, syncing FinancialAgents from a git daemon on loopback);
# 5. the node tier (node_*): a real one-node cluster on this machine (scripts/node.sh test): the
#    three images built from their Dockerfiles and the datastores' images, the chart, a platform
#    serving through Traefik, scaling, NetworkPolicies enforced, pod loss and rollbacks
#    (e2e/run.sh). FINAGENT_SKIP_NODE_TIER=1 leaves it out and says so;
# 6. stops every server it started, whatever happened.
#
# Usage: scripts/test.sh [extra cargo test arguments, e.g. a test name filter]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# One build from a fresh clone gains nothing from incremental compilation, which would add gigabytes
# under target/debug; a developer's own `cargo test` keeps it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

step "installing test dependencies"
install_debian_packages \
  tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa tesseract-ocr-ita tesseract-ocr-nld tesseract-ocr-por poppler-utils libtesseract-dev libleptonica-dev libclang-dev clang pkg-config \
  redis-server python3 python3-venv curl jq ca-certificates prometheus shellcheck openssl git \
  chromium fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-noto-mono nodejs
ensure_test_venv
ensure_ppocr
ensure_browser_tools
ensure_cluster_tools

step "test control plane (Go modules, cached)"
if ! command -v go >/dev/null; then
  echo "no Go toolchain on this machine: the control plane cannot be built, so the cluster tier cannot run" >&2
  exit 1
fi
controlplane_bin="$(bash "$root/scripts/controlplane-build.sh")"
step "Argo CD (Go modules, cached)"
argocd_dist="$(bash "$root/scripts/argocd-build.sh")"

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/finagent-test.XXXXXX")"
pids=()
cleanup() {
  local status=$?
  stop_started
  rm -rf "$run_dir"
  exit "$status"
}
trap cleanup EXIT INT TERM

step "starting test servers"
start_servers "$run_dir" ':memory:'
export FINAGENT_TEST_REDIS_URL="$STARTED_REDIS_URL"
export FINAGENT_TEST_MONGODB_URL="$STARTED_MONGODB_URL"
export FINAGENT_TEST_REQUIRE_SERVERS=1
export FINAGENT_TEST_VENV="$VENV"
export FINAGENT_TEST_HELM="$TOOLS/bin/helm"
FINAGENT_TEST_PROMTOOL="$(command -v promtool)"
export FINAGENT_TEST_PROMTOOL
export OMP_THREAD_LIMIT=1
# Where the development receipts sit beside the repository (as in this project's CI), the tests
# that measure extraction on them must run, not skip.
if [ -d "$root/../shared" ]; then
  export FINAGENT_TEST_REQUIRE_DEV_SET=1
fi
echo "redis: $FINAGENT_TEST_REDIS_URL"
echo "mongodb: $FINAGENT_TEST_MONGODB_URL"
# shellcheck source=scripts/controlplane.sh
source "$root/scripts/controlplane.sh"
start_control_plane "$controlplane_bin" "$run_dir/cluster"
export FINAGENT_TEST_KUBECONFIG="$STARTED_KUBECONFIG"
export FINAGENT_TEST_KUBECTL="$TOOLS/bin/kubectl"
export FINAGENT_TEST_REQUIRE_CLUSTER=1
# The browser tests (browser_*) drive this chromium; a missing one fails them instead of skipping.
export FINAGENT_TEST_REQUIRE_BROWSER=1
export CHROMIUM=/usr/bin/chromium

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "source structure (module circles, file length, the README's layout table)"
python3 "$root/scripts/check_structure.py"

"$root/scripts/check-delivery.sh"

step "cargo test"
cargo test --workspace --locked "$@" -- --skip cluster_

# Each cluster test has its own namespace and operator and mostly waits on the cluster, so they
# run side by side (the default is one thread per core).
step "cluster tier (the real operator on the test control plane, and a real Argo CD)"
# shellcheck source=scripts/argocd.sh
source "$root/scripts/argocd.sh"
start_argocd "$argocd_dist" "$run_dir/argocd" "$FINAGENT_TEST_KUBECONFIG" "$FINAGENT_TEST_KUBECTL"
export FINAGENT_TEST_REQUIRE_ARGOCD=1
# `--workspace`, as above, so that the features are resolved the same and nothing is built again.
cargo test --workspace --locked --test cluster "$@" -- --test-threads 12 --nocapture

# A real node on this machine: containers from our images, behind a real Ingress (scripts/node.sh).
step "node tier (a real node: our images, Traefik, NetworkPolicies; e2e/run.sh)"
if [ -n "${FINAGENT_SKIP_NODE_TIER:-}" ]; then
  echo "node tier: SKIPPED (FINAGENT_SKIP_NODE_TIER is set)"
else
  node_started=$SECONDS
  bash "$root/scripts/node.sh" test
  echo "node tier: $((SECONDS - node_started)) s"
fi

step "all checks passed"
