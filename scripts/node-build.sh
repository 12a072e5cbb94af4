#!/usr/bin/env bash
# Builds what a real node of the test cluster runs beside Debian's containerd, runc and CNI plugins,
# from Go modules at pinned versions, and prints the folder that holds the binaries:
#   kubelet and kube-proxy   k8s.io/kubernetes, the same release as the control plane
#   coredns                  the cluster DNS (github.com/coredns/coredns)
#   kube-network-policies    NetworkPolicy enforcement, as kind runs it (sigs.k8s.io/kube-network-policies)
#   traefik                  the Ingress controller (github.com/traefik/traefik/v3)
#   ferretdb                 the MongoDB-wire server of the datastore image (github.com/FerretDB/FerretDB)
#   pause                    the pod sandbox's process, compiled from Kubernetes' own pause.c
#
# Cached like the control plane ($FINAGENT_NODE_CACHE, by default ~/.cache/finagent/node/<versions>):
# a second run with the same versions only checks that the binaries are there.
set -euo pipefail

KUBERNETES_VERSION="${FINAGENT_KUBERNETES_VERSION:-v1.36.3}"
COREDNS_VERSION="${FINAGENT_COREDNS_VERSION:-v1.14.7}"
NETWORK_POLICIES_VERSION="${FINAGENT_NETWORK_POLICIES_VERSION:-v0.8.0}"
# v3.7.11 and later replace go-http-auth with a fork version the Go module proxy does not serve.
TRAEFIK_VERSION="${FINAGENT_TRAEFIK_VERSION:-v3.7.10}"
FERRETDB_VERSION="${FINAGENT_FERRETDB_VERSION:-v1.24.2}"

cache="${FINAGENT_NODE_CACHE:-$HOME/.cache/finagent/node}"
bin="$cache/k8s-$KUBERNETES_VERSION-coredns-$COREDNS_VERSION-knp-$NETWORK_POLICIES_VERSION-xtqueue-traefik-$TRAEFIK_VERSION-ferretdb-$FERRETDB_VERSION-patched/bin"
binaries=(kubelet kube-proxy coredns kube-network-policies traefik ferretdb pause)

all_present() {
  local binary
  for binary in "${binaries[@]}"; do
    [ -x "$bin/$binary" ] || return 1
  done
}

if all_present; then
  echo "node: present ($bin)" >&2
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "node: no Go toolchain on PATH; it is needed to build kubelet, kube-proxy and the node's services" >&2
  exit 1
fi

export GOFLAGS="-mod=mod"
export CGO_ENABLED=0
work="$cache/src"
mkdir -p "$work" "$bin"
started=$(date +%s)

# shellcheck source=scripts/gobuild.sh
source "$(dirname "${BASH_SOURCE[0]}")/gobuild.sh"

# Builds $2 (a package path) at module version $3 into $bin/$1, in a module of its own.
build_tool() {
  local name="$1" package="$2" version="$3" ldflags="${4:-}"
  local dir
  [ -x "$bin/$name" ] && return
  echo "node: building $name $version" >&2
  dir="$(new_module "$name")"
  (
    cd "$dir"
    go get "$package@$version" >&2
    go build -trimpath -ldflags "$ldflags" -o "$bin/$name" "$package"
  )
}

if [ ! -x "$bin/kubelet" ] || [ ! -x "$bin/kube-proxy" ] || [ ! -x "$bin/pause" ]; then
  echo "node: building kubelet, kube-proxy $KUBERNETES_VERSION" >&2
  dir="$(new_module kubernetes)"
  require_kubernetes "$dir" "$KUBERNETES_VERSION"
  version_flags="$(kubernetes_version_flags "$KUBERNETES_VERSION")"
  (
    cd "$dir"
    go get "k8s.io/kubernetes/cmd/kubelet@$KUBERNETES_VERSION" "k8s.io/kubernetes/cmd/kube-proxy@$KUBERNETES_VERSION" >&2
    go build -trimpath -ldflags "$version_flags" -o "$bin/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
    # The sandbox process every pod starts with, statically linked so that the pause image needs
    # nothing else.
    pause_source="$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
    gcc -Os -static -DVERSION="\"$KUBERNETES_VERSION\"" -o "$bin/pause" "$pause_source"
  )
fi

build_tool coredns github.com/coredns/coredns "$COREDNS_VERSION"
# kube-network-policies hands packets to its NFQUEUE with the nftables `queue` expression, which
# this machine's kernel lacks (nft_queue), while the xtables NFQUEUE target is there (and works in
# an inet table through nft_compat). It is built from a copy of the module whose three queue
# expressions are that target instead; each is checked to still apply.
if [ ! -x "$bin/kube-network-policies" ]; then
  echo "node: building kube-network-policies $NETWORK_POLICIES_VERSION" >&2
  dir="$(new_module knp-download)"
  source_dir="$(cd "$dir" && go mod download -json "sigs.k8s.io/kube-network-policies@$NETWORK_POLICIES_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  rm -rf "$work/kube-network-policies"
  cp -r "$source_dir" "$work/kube-network-policies"
  chmod -R u+w "$work/kube-network-policies"
  package="$work/kube-network-policies/pkg/networkpolicy"
  cat >"$package/xtqueue.go" <<'GO'
package networkpolicy

import (
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// xtQueue hands a packet to NFQUEUE `num` through the xtables NFQUEUE target (revision 3), for
// kernels without the nftables queue expression. Its info is struct xt_NFQ_info_v3 in host byte
// order (little-endian here): the queue number, one queue, and the bypass flag, padded to 8 bytes.
func xtQueue(num uint16, bypass bool) expr.Any {
	var flags byte
	if bypass {
		flags = 1
	}
	info := xt.Unknown([]byte{byte(num), byte(num >> 8), 1, 0, flags, 0, 0, 0})
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}
GO
  perl -0pi -e 's/queue := &expr\.Queue\{Num: uint16\(c\.config\.QueueID\)\}\n\tif c\.config\.FailOpen \{\n\t\tqueue\.Flag = expr\.QueueFlagBypass\n\t\}/queue := xtQueue(uint16(c.config.QueueID), c.config.FailOpen)/g' \
    "$package/controller.go"
  perl -0pi -e 's/&expr\.Queue\{Num: uint16\(n\.nfQueueID\), Flag: expr\.QueueFlagBypass\}/xtQueue(uint16(n.nfQueueID), true)/g' "$package/dnsagent.go"
  if grep -q "expr.Queue{" "$package/controller.go" "$package/dnsagent.go" ||
    [ "$(grep -c "xtQueue(" "$package/controller.go" "$package/dnsagent.go" | awk -F: '{s += $2} END {print s}')" -ne 3 ]; then
    echo "node: kube-network-policies' queue expressions changed; review the NFQUEUE patch" >&2
    exit 1
  fi
  (cd "$work/kube-network-policies" && go build -trimpath -o "$bin/kube-network-policies" ./cmd)
fi
# Traefik is built as its own main module, so that its go.mod's replace directives hold. One of
# them points at a nested module of its repository (pkg/config/dynamic/ext: extension points of
# the dynamic configuration, two empty types in the open-source build) that the module zip leaves
# out; it is written back as upstream has it.
if [ ! -x "$bin/traefik" ]; then
  echo "node: building traefik $TRAEFIK_VERSION" >&2
  dir="$(new_module traefik-download)"
  source_dir="$(cd "$dir" && go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  rm -rf "$work/traefik"
  cp -r "$source_dir" "$work/traefik"
  chmod -R u+w "$work/traefik"
  mkdir -p "$work/traefik/pkg/config/dynamic/ext"
  printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24.0\n' >"$work/traefik/pkg/config/dynamic/ext/go.mod"
  printf 'package ext\n\n// HTTP holds extensions of the HTTP configuration.\ntype HTTP struct{}\n\n// Router holds extensions of a router.\ntype Router struct{}\n' \
    >"$work/traefik/pkg/config/dynamic/ext/ext.go"
  (
    cd "$work/traefik"
    go build -trimpath -ldflags "-X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
      -o "$bin/traefik" ./cmd/traefik
  )
fi
# FerretDB refuses to start unless its version file holds its version, which its release process
# writes and the module zip lacks: it is built from a copy of the module with that file written.
# Two changes to its code, each checked to still apply:
# - after the last SCRAM step it answers `done: true`, as MongoDB 4.4 and later do when the client
#   asks to skip the empty exchange (`skipEmptyExchange`). FerretDB 1.24 ignores that option and
#   answers `done: false`, which the Rust driver 3 refuses ("expected SCRAM authentication to have
#   completed");
# - createIndexes with two or more indexes that already exist (every start of a service after the
#   first) panics: it deletes from the filtered list by the position in the unfiltered one. The
#   existing index is removed by name instead.
if [ ! -x "$bin/ferretdb" ]; then
  echo "node: building ferretdb $FERRETDB_VERSION" >&2
  dir="$(new_module ferretdb-download)"
  source_dir="$(cd "$dir" && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  rm -rf "$work/ferretdb"
  cp -r "$source_dir" "$work/ferretdb"
  chmod -R u+w "$work/ferretdb"
  echo "$FERRETDB_VERSION" >"$work/ferretdb/build/version/version.txt"
  sasl="$work/ferretdb/internal/handler/msg_saslcontinue.go"
  grep -q '"done", valid, // for compatibility' "$sasl" || { echo "node: FerretDB's saslContinue changed; review the SCRAM patch" >&2; exit 1; }
  sed -i 's#"done", valid, // for compatibility.*#"done", conv.Valid(), // the exchange is complete once the last step is valid (skipEmptyExchange)#' "$sasl"
  indexes="$work/ferretdb/internal/handler/msg_createindexes.go"
  grep -q 'filteredToCreate = slices.Delete(filteredToCreate, i, i+1)' "$indexes" || { echo "node: FerretDB's createIndexes changed; review the index patch" >&2; exit 1; }
  sed -i 's#filteredToCreate = slices.Delete(filteredToCreate, i, i+1)#filteredToCreate = slices.DeleteFunc(filteredToCreate, func(index backends.IndexInfo) bool { return index.Name == newIdx.Name })#' "$indexes"
  (cd "$work/ferretdb" && go build -trimpath -o "$bin/ferretdb" ./cmd/ferretdb)
fi

all_present
echo "node: built in $(($(date +%s) - started)) s ($bin)" >&2
echo "$bin"
