#!/usr/bin/env bash
# Builds the test Kubernetes control plane from Go modules at pinned versions and prints the folder
# that holds the binaries: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.
#
# The binaries go to a cache outside the repository ($FINAGENT_CONTROLPLANE_CACHE, by default
# ~/.cache/finagent/controlplane/<versions>), so fresh clones on the same machine reuse them; a
# second run with the same versions only checks that they are there. Go's own module and build
# caches (~/go/pkg/mod, ~/.cache/go-build) make a rebuild after a version change incremental.
#
# k8s.io/kubernetes is pulled in as scripts/gobuild.sh describes.
set -euo pipefail

KUBERNETES_VERSION="${FINAGENT_KUBERNETES_VERSION:-v1.36.3}"
ETCD_VERSION="${FINAGENT_ETCD_VERSION:-v3.6.8}"
KWOK_VERSION="${FINAGENT_KWOK_VERSION:-v0.8.0}"

cache="${FINAGENT_CONTROLPLANE_CACHE:-$HOME/.cache/finagent/controlplane}"
bin="$cache/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok kwok-node-stages.yaml)

all_present() {
  local binary
  for binary in "${binaries[@]}"; do
    [ -x "$bin/$binary" ] || return 1
  done
}

if all_present; then
  echo "control plane: present ($bin)" >&2
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "control plane: no Go toolchain on PATH; it is needed to build etcd, Kubernetes and kwok" >&2
  exit 1
fi

export GOFLAGS="-mod=mod"
export CGO_ENABLED=0
work="$cache/src"
mkdir -p "$work" "$bin"
started=$(date +%s)

# shellcheck source=scripts/gobuild.sh
source "$(dirname "${BASH_SOURCE[0]}")/gobuild.sh"

echo "control plane: building etcd $ETCD_VERSION" >&2
dir="$(new_module etcd)"
(cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 && go build -trimpath -o "$bin/etcd" go.etcd.io/etcd/server/v3)

echo "control plane: building kube-apiserver, kube-controller-manager, kube-scheduler $KUBERNETES_VERSION" >&2
dir="$(new_module kubernetes)"
require_kubernetes "$dir" "$KUBERNETES_VERSION"
version_flags="$(kubernetes_version_flags "$KUBERNETES_VERSION")"
(
  cd "$dir"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBERNETES_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$KUBERNETES_VERSION" >&2
  go build -trimpath -ldflags "$version_flags" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
)

echo "control plane: building kwok $KWOK_VERSION" >&2
dir="$(new_module kwok)"
(
  cd "$dir"
  go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  go build -trimpath -ldflags "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" -o "$bin/kwok" sigs.k8s.io/kwok/cmd/kwok
  # kwok's own node stages (initialise, heartbeat with a Lease), kept beside it: a kwok
  # configuration that names its pod stages must name its node stages too.
  stages="$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage/node"
  { cat "$stages/fast/node-initialize.yaml"; echo "---"; cat "$stages/heartbeat-with-lease/node-heartbeat-with-lease.yaml"; } \
    >"$bin/kwok-node-stages.yaml"
  chmod +x "$bin/kwok-node-stages.yaml"
)

all_present
echo "control plane: built in $(($(date +%s) - started)) s ($bin)" >&2
echo "$bin"
