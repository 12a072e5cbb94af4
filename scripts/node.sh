#!/usr/bin/env bash
# A one-node Kubernetes cluster on this machine, with real containers: the control plane of
# scripts/controlplane.sh, and a node made of Debian's containerd, runc and CNI plugins with kubelet
# and kube-proxy (host processes), and CoreDNS, Traefik (the Ingress controller) and
# kube-network-policies (NetworkPolicy enforcement) as pods. The platform's images and the
# datastores' are built here (scripts/images.sh) and imported into containerd; no registry is used.
#
#   scripts/node.sh up      builds what is missing (cached), starts everything, prints how to use it
#   scripts/node.sh down    stops everything and removes the node's state, network and rules
#   scripts/node.sh test    up, the end-to-end journey of e2e/run.sh through the Ingress, down
#
# Needs root (containers, network), Go (the cached builds) and Debian 12. It uses the address
# $FINAGENT_NODE_IP (default 10.250.0.1) on the loopback interface, pods in 10.244.0.0/24, Services in
# 10.96.0.0/16, and keeps its state in /run/finagent-node and /var/lib/finagent-node.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
# shellcheck source=scripts/controlplane.sh
source "$root/scripts/controlplane.sh"

NODE_NAME=finagent-node
NODE_IP="${FINAGENT_NODE_IP:-10.250.0.1}"
POD_CIDR=10.244.0.0/24
CLUSTER_DNS=10.96.0.10
BRIDGE=finagent-br0
RUN=/run/finagent-node
DATA=/var/lib/finagent-node
PIDS="$RUN/pids"

node_packages() {
  install_debian_packages containerd runc containernetworking-plugins buildah podman debootstrap \
    iptables nftables conntrack iproute2 openssl curl jq python3 python3-venv gcc libc6-dev \
    libtesseract-dev libleptonica-dev libclang-dev clang pkg-config
  ensure_cluster_tools
}

# Starts "$@" in the background with its output in $RUN/$name.log, and remembers its pid.
start_daemon() {
  local name="$1"
  shift
  "$@" >"$RUN/$name.log" 2>&1 &
  echo "$!" >>"$PIDS"
}

kubectl_node() {
  "$TOOLS/bin/kubectl" --kubeconfig "$RUN/cluster/admin.kubeconfig" "$@"
}

# Waits up to $1 seconds for "${@:3}" to succeed; says $2 and fails after.
wait_until() {
  local timeout="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "node: timed out after ${timeout}s waiting for $what" >&2
      return 1
    fi
    sleep 1
  done
}

# The node's address sits on the loopback interface (this machine's kernel has no dummy
# interfaces): the pods reach it through their bridge's gateway, and nothing outside sees it.
network_up() {
  ip addr replace "$NODE_IP/32" dev lo
  echo 1 >/proc/sys/net/ipv4/ip_forward
  # Pods talk to Services on their own bridge: bridged traffic must pass through iptables.
  echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
  mkdir -p "$RUN/cni"
  cat >"$RUN/cni/10-finagent.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "finagent",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$DATA/cni"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

containerd_up() {
  local sandbox_image="$1"
  mkdir -p "$RUN/containerd" "$DATA/containerd"
  cat >"$RUN/containerd/config.toml" <<EOF
version = 2
root = "$DATA/containerd"
state = "$RUN/containerd/state"
[grpc]
  address = "$RUN/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$sandbox_image"
  # This machine may not lower its processes' OOM scores (no CAP_SYS_RESOURCE).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni"
EOF
  start_daemon containerd containerd --config "$RUN/containerd/config.toml"
  wait_until 60 "containerd" ctr --address "$RUN/containerd/containerd.sock" version
}

kubelet_up() {
  local bin="$1" pki="$RUN/cluster/pki" server
  server="$(sed -n 's/.*server: "\(.*\)".*/\1/p' "$RUN/cluster/admin.kubeconfig")"
  (
    cd "$pki"
    # The kubelet's client certificate (the Node authorizer knows it by this name and group) and
    # its serving certificate for the API server (logs, exec, port-forward).
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:nodes/CN=system:node:$NODE_NAME" \
      -keyout kubelet.key -out kubelet.csr 2>/dev/null
    openssl x509 -req -in kubelet.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile admin.ext -out kubelet.crt 2>/dev/null
    printf 'subjectAltName=IP:%s,DNS:%s\nextendedKeyUsage=serverAuth\n' "$NODE_IP" "$NODE_NAME" >kubelet-serving.ext
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$NODE_NAME" -keyout kubelet-serving.key -out kubelet-serving.csr 2>/dev/null
    openssl x509 -req -in kubelet-serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile kubelet-serving.ext -out kubelet-serving.crt 2>/dev/null
  )
  controlplane_kubeconfig "$RUN/kubelet.kubeconfig" "$server" "$pki/ca.crt" \
    "    client-certificate: \"$pki/kubelet.crt\"
    client-key: \"$pki/kubelet.key\""
  mkdir -p "$DATA/kubelet"
  cat >"$RUN/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 (with cgroup2 only at /sys/fs/cgroup/unified) and no systemd
# managing our processes.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$RUN/containerd/containerd.sock
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
clusterDomain: cluster.local
clusterDNS: [$CLUSTER_DNS]
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# Every image is imported, none can be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
localStorageCapacityIsolation: false
EOF
  start_daemon kubelet "$bin/kubelet" --config "$RUN/kubelet.yaml" --kubeconfig "$RUN/kubelet.kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$DATA/kubelet" --v 1
}

kube_proxy_up() {
  local bin="$1"
  start_daemon kube-proxy "$bin/kube-proxy" --kubeconfig "$RUN/cluster/admin.kubeconfig" \
    --hostname-override "$NODE_NAME" --bind-address "$NODE_IP" --cluster-cidr "$POD_CIDR" --proxy-mode iptables \
    --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0 \
    --iptables-localhost-nodeports=false \
    --healthz-bind-address 127.0.0.1:10256 --metrics-bind-address 127.0.0.1:10249 --v 1
}

# The cluster's own services and storage: CoreDNS, kube-network-policies, Traefik and its
# IngressClass, and a default StorageClass whose PersistentVolumes are folders of this machine.
addons_up() {
  local node_key="$1" ingress_port="$2" volume
  for volume in 0 1 2 3 4 5 6 7; do
    mkdir -p "$DATA/volumes/$volume"
    # Any user of a pod may write (the datastores run as 999): a hostPath volume has no fsGroup.
    chmod 0777 "$DATA/volumes/$volume"
  done
  sed -e "s#@NODE_IMAGE@#localhost/finagent/node-services:$node_key#g" \
    -e "s#@INGRESS_PORT@#$ingress_port#g" -e "s#@NODE_IP@#$NODE_IP#g" -e "s#@CLUSTER_DNS@#$CLUSTER_DNS#g" \
    -e "s#@VOLUMES@#$DATA/volumes#g" -e "s#@NODE_NAME@#$NODE_NAME#g" \
    "$root/e2e/node/addons.yaml" | kubectl_node apply -f - >/dev/null
}

cmd_up() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/node.sh needs root: it starts containers and sets up the node's network" >&2
    exit 1
  fi
  if [ -s "$PIDS" ]; then
    echo "the node is up already (scripts/node.sh down stops it)" >&2
    exit 1
  fi
  local started=$SECONDS
  step "node: packages and tools"
  node_packages
  local controlplane_bin node_bin node_key ingress_port
  controlplane_bin="$(bash "$root/scripts/controlplane-build.sh")"
  node_bin="$(bash "$root/scripts/node-build.sh")"
  node_key="$(basename "$(dirname "$node_bin")")"
  mkdir -p "$RUN" "$DATA"
  : >"$PIDS"

  step "node: images"
  bash "$root/scripts/images.sh" "$node_bin" "$DATA/images.tar" e2e >"$RUN/images.txt"

  step "node: control plane"
  network_up
  local pids=()
  start_control_plane "$controlplane_bin" "$RUN/cluster" "$NODE_IP"
  printf '%s\n' "${pids[@]}" >>"$PIDS"

  step "node: containerd, kubelet, kube-proxy"
  containerd_up "localhost/finagent/pause:$node_key"
  ctr --address "$RUN/containerd/containerd.sock" -n k8s.io images import "$DATA/images.tar" >/dev/null
  echo "containerd: $(wc -l <"$RUN/images.txt") images imported"
  # containerd holds them now; the archive (about 2 GB) is not needed again.
  rm -f "$DATA/images.tar"
  kubelet_up "$node_bin"
  kube_proxy_up "$node_bin"
  wait_until 120 "the node to be Ready" kubectl_node wait node "$NODE_NAME" --for condition=Ready --timeout 1s

  step "node: CoreDNS, NetworkPolicy enforcement, Traefik, storage"
  ingress_port="${FINAGENT_INGRESS_PORT:-$(free_port)}"
  addons_up "$node_key" "$ingress_port"
  kubectl_node -n kube-system rollout status deployment/coredns --timeout 180s
  kubectl_node -n kube-system rollout status daemonset/kube-network-policies --timeout 180s
  kubectl_node -n kube-system rollout status deployment/traefik --timeout 180s

  cat >"$RUN/env" <<EOF
export KUBECONFIG="$RUN/cluster/admin.kubeconfig"
export FINAGENT_NODE_KEY="$node_key"
export FINAGENT_INGRESS="127.0.0.1:$ingress_port"
export PATH="$TOOLS/bin:\$PATH"
EOF
  step "node: up in $((SECONDS - started)) s"
  cat <<EOF
The cluster is up. In a shell:
  source $RUN/env
  kubectl get nodes,pods -A
Install the operator and a FinancialAgent (images tagged e2e, datastores from localhost/finagent/*:$node_key):
  e2e/run.sh            (the end-to-end journey; or by hand, as docs/deploy-helm.md shows)
The Ingress (Traefik) answers on http://127.0.0.1:$ingress_port with the resource's host, e.g.
  curl -H 'Host: receipts.e2e.test' http://127.0.0.1:$ingress_port/
EOF
}

cmd_down() {
  local bin
  if [ -s "$PIDS" ]; then
    # The pods first, so that their mounts and network go with them, while the node still runs.
    if [ -f "$RUN/cluster/admin.kubeconfig" ]; then
      kubectl_node delete namespace --all --wait=false >/dev/null 2>&1 || true
    fi
    tac "$PIDS" | while read -r pid; do kill "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
      local running=0
      while read -r pid; do kill -0 "$pid" 2>/dev/null && running=1; done <"$PIDS"
      [ "$running" -eq 0 ] && break
      sleep 0.1
    done
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$PIDS"
  fi
  # Containers left by the shims, then their mounts.
  pkill -9 -f "containerd-shim-runc-v2 -namespace k8s.io" 2>/dev/null || true
  if [ -d "$RUN/containerd/state" ] || [ -d "$DATA" ]; then
    for _ in 1 2 3; do
      { grep -E " ($DATA|$RUN)/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r mount; do
        umount -l "$mount" 2>/dev/null || true
      done
    done
  fi
  # kube-proxy's and the CNI plugins' rules, the bridge and the node's address.
  bin="$(find "$HOME/.cache/finagent/node" -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | head -1 || true)"
  if [ -n "$bin" ] && [ -x "$bin/kube-proxy" ]; then
    "$bin/kube-proxy" --cleanup --proxy-mode iptables >/dev/null 2>&1 || true
  fi
  nft delete table inet kube-network-policies 2>/dev/null || true
  # The kubelet's, kube-proxy's and the CNI plugins' chains and the rules that jump to them.
  iptables-save | grep -v -e 'KUBE-' -e 'CNI-' | iptables-restore
  ip link delete "$BRIDGE" 2>/dev/null || true
  ip addr delete "$NODE_IP/32" dev lo 2>/dev/null || true
  rm -rf "$RUN" "$DATA/containerd" "$DATA/kubelet" "$DATA/cni" "$DATA/volumes"
  echo "node: down"
}

# Up, the journey, down; the node stays up after a failure with FINAGENT_NODE_KEEP=1.
cmd_test() {
  # The one-line summary of a failed journey, kept outside the node's state, which `down` removes.
  result="$(mktemp)"
  if [ -z "${FINAGENT_NODE_KEEP:-}" ]; then
    trap 'on_exit $?' EXIT
  fi
  cmd_up
  # shellcheck disable=SC1091  # written by cmd_up
  source "$RUN/env"
  E2E_PLATFORM=node E2E_RESULT="$result" "$root/e2e/run.sh"
}

# The logs, the node down, then what failed as the last line, where a reader of the output's end
# finds it.
on_exit() {
  tail_logs "$1"
  cmd_down
  if [ "$1" -ne 0 ] && [ -s "$result" ]; then
    echo "node tier FAILED: $(cat "$result")" >&2
  elif [ "$1" -ne 0 ]; then
    echo "node tier FAILED while bringing the node up (status $1)" >&2
  fi
  rm -f "$result"
  exit "$1"
}

# After a failure, the end of each node process's log.
tail_logs() {
  [ "$1" -eq 0 ] && return
  local log
  for log in "$RUN"/*.log "$RUN"/cluster/*.log; do
    [ -f "$log" ] || continue
    echo "--- $log" >&2
    tail -n 15 "$log" >&2
  done
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  test) cmd_test ;;
  *)
    echo "usage: scripts/node.sh up|down|test" >&2
    exit 2
    ;;
esac
