# shellcheck shell=bash
# The test Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
# and kwok (the nodes and their kubelets), started on loopback from the binaries that
# scripts/controlplane-build.sh builds. Sourced by scripts/test.sh, not run.
#
# What it is like: a real API server (RBAC, admission with PodSecurity, CRDs with CEL validation,
# the TokenRequest API), the real Deployment, ReplicaSet, StatefulSet, garbage-collector, namespace
# and volume-binding controllers, the real scheduler, and one kwok node on which pods become
# Running and Ready without a container. Pods whose image tag is `never-ready` run but never pass
# their readiness (kwok stages below), which is how the tests make a revision fail.

# Writes the certificates: a CA, the API server's serving certificate, the service-account signing
# key pair and a client certificate in system:masters for the control plane's own components.
controlplane_certificates() {
  local dir="$1" node_ip="${2:-}"
  mkdir -p "$dir"
  (
    cd "$dir" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=finagent-test-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,%sDNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' \
      "${node_ip:+IP:$node_ip,}" >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=finagent-test-admin" \
      -keyout admin.key -out admin.csr 2>/dev/null
    # X.509 v3 (with extensions): rustls, which the operator's client uses, refuses v1 certificates.
    printf 'extendedKeyUsage=clientAuth\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile admin.ext -out admin.crt 2>/dev/null
    # The API server's client certificate for the kubelets (logs, exec, port-forward).
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
      -keyout kubelet-client.key -out kubelet-client.csr 2>/dev/null
    openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile admin.ext -out kubelet-client.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

# A kubeconfig for a client certificate (admin) or a bearer token.
controlplane_kubeconfig() {
  local file="$1" server="$2" ca="$3" user_lines="$4"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "$server", certificate-authority: "$ca"}
users:
- name: user
  user:
$user_lines
contexts:
- name: test
  context: {cluster: test, user: user}
current-context: test
EOF
}

# Pod stages for kwok: pods become Running and Ready at once, except those whose image tag is
# `never-ready`, which run with failing readiness; deleted pods go away.
controlplane_kwok_config() {
  cat >"$1" <<'EOF'
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  nodeLeaseDurationSeconds: 40
  nodeLeaseParallelism: 4
  podPlayStageParallelism: 8
  nodePlayStageParallelism: 4
  podsOnNodeSyncParallelism: 4
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: '.metadata.deletionTimestamp', operator: DoesNotExist}
    - {key: '.status.phase', operator: In, values: [Pending]}
    - {key: '.spec.containers.[0].image | endswith(":never-ready")', operator: NotIn, values: ['true']}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - {lastTransitionTime: {{ $now | Quote }}, status: "True", type: Initialized}
      - {lastTransitionTime: {{ $now | Quote }}, status: "True", type: Ready}
      - {lastTransitionTime: {{ $now | Quote }}, status: "True", type: ContainersReady}
      - {lastTransitionTime: {{ $now | Quote }}, status: "True", type: PodScheduled}
      containerStatuses:
      {{ range .spec.containers }}
      - {image: {{ .image | Quote }}, name: {{ .name | Quote }}, ready: true, restartCount: 0, started: true, state: {running: {startedAt: {{ $now | Quote }}}}}
      {{ end }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      hostIP: "10.0.0.1"
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-never-ready
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: '.metadata.deletionTimestamp', operator: DoesNotExist}
    - {key: '.status.phase', operator: In, values: [Pending]}
    - {key: '.spec.containers.[0].image | endswith(":never-ready")', operator: In, values: ['true']}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - {lastTransitionTime: {{ $now | Quote }}, status: "True", type: Initialized}
      - {lastTransitionTime: {{ $now | Quote }}, status: "False", type: Ready, reason: ContainersNotReady}
      - {lastTransitionTime: {{ $now | Quote }}, status: "False", type: ContainersReady, reason: ContainersNotReady}
      - {lastTransitionTime: {{ $now | Quote }}, status: "True", type: PodScheduled}
      containerStatuses:
      {{ range .spec.containers }}
      - {image: {{ .image | Quote }}, name: {{ .name | Quote }}, ready: false, restartCount: 0, started: true, state: {running: {startedAt: {{ $now | Quote }}}}}
      {{ end }}
      hostIP: "10.0.0.1"
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: '.metadata.deletionTimestamp', operator: Exists}
  next:
    delete: true
EOF
}

# Waits until the API server answers /readyz (60 s at most).
controlplane_wait_ready() {
  local kubeconfig="$1" log="$2"
  for _ in $(seq 1 600); do
    if "$TOOLS/bin/kubectl" --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "kube-apiserver did not become ready; its log:" >&2
  tail -50 "$log" >&2 || true
  return 1
}

# Starts the control plane under $2 (a folder of the run) from the binaries in $1. Sets
# STARTED_KUBECONFIG (admin) and appends every pid to the caller's `pids` array, which the
# caller's exit trap stops.
#
# With a node address in $3, the control plane is the one of a real node (scripts/node.sh): the API
# server listens on that address too and advertises it as the `kubernetes` Service's endpoint, so
# that pods reach it, and there is no kwok node. Without, it serves loopback only, with kwok.
start_control_plane() {
  local bin="$1" dir="$2" node_ip="${3:-}"
  local etcd_port peer_port api_port scheduler_port kwok_port
  local bind_address=127.0.0.1 advertise_address=127.0.0.1 reconciler=none privileged=false
  if [ -n "$node_ip" ]; then
    # The node's NetworkPolicy enforcement runs as a privileged pod in kube-system.
    bind_address=0.0.0.0 advertise_address="$node_ip" reconciler=lease privileged=true
  fi
  mkdir -p "$dir"
  controlplane_certificates "$dir/pki" "$node_ip"
  etcd_port="$(free_port)"
  peer_port="$(free_port)"
  "$bin/etcd" --name test --data-dir "$dir/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "test=http://127.0.0.1:$peer_port" --log-level warn >"$dir/etcd.log" 2>&1 &
  pids+=("$!")
  wait_for_port "$etcd_port" etcd "$dir/etcd.log"

  api_port="$(free_port)"
  # An audit log of every write made with a ServiceAccount's credentials (the operators under
  # test), leases aside: the cluster tier reads it to prove a fenced replica wrote nothing.
  cat >"$dir/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    resources: [{group: coordination.k8s.io, resources: [leases]}]
  - level: Request
    userGroups: ["system:serviceaccounts"]
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
POLICY
  "$bin/kube-apiserver" \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
    --audit-log-format json --audit-log-maxsize 0 --audit-log-mode blocking \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$bind_address" --advertise-address "$advertise_address" --secure-port "$api_port" \
    --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --authorization-mode Node,RBAC --allow-privileged="$privileged" \
    --enable-admission-plugins NamespaceLifecycle,ServiceAccount,PodSecurity,DefaultStorageClass,ResourceQuota,LimitRanger \
    --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type "$reconciler" \
    --kubelet-client-certificate "$dir/pki/kubelet-client.crt" --kubelet-client-key "$dir/pki/kubelet-client.key" \
    --kubelet-certificate-authority "$dir/pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --disable-admission-plugins StorageObjectInUseProtection \
    --v 1 >"$dir/kube-apiserver.log" 2>&1 &
  pids+=("$!")
  local server="https://127.0.0.1:$api_port"
  STARTED_KUBECONFIG="$dir/admin.kubeconfig"
  controlplane_kubeconfig "$STARTED_KUBECONFIG" "$server" "$dir/pki/ca.crt" \
    "    client-certificate: \"$dir/pki/admin.crt\"
    client-key: \"$dir/pki/admin.key\""
  controlplane_wait_ready "$STARTED_KUBECONFIG" "$dir/kube-apiserver.log"
  echo "kube-apiserver: ready at $server"

  "$bin/kube-controller-manager" \
    --kubeconfig "$STARTED_KUBECONFIG" --authentication-kubeconfig "$STARTED_KUBECONFIG" \
    --authorization-kubeconfig "$STARTED_KUBECONFIG" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 \
    --service-account-private-key-file "$dir/pki/sa.key" --root-ca-file "$dir/pki/ca.crt" \
    --use-service-account-credentials=false --concurrent-gc-syncs 5 \
    --v 1 >"$dir/kube-controller-manager.log" 2>&1 &
  pids+=("$!")
  scheduler_port="$(free_port)"
  "$bin/kube-scheduler" \
    --kubeconfig "$STARTED_KUBECONFIG" --authentication-kubeconfig "$STARTED_KUBECONFIG" \
    --authorization-kubeconfig "$STARTED_KUBECONFIG" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$scheduler_port" \
    --v 1 >"$dir/kube-scheduler.log" 2>&1 &
  pids+=("$!")
  if [ -n "$node_ip" ]; then
    echo "control plane: etcd, kube-apiserver (on $node_ip:$api_port), kube-controller-manager, kube-scheduler"
    return
  fi

  controlplane_kwok_config "$dir/kwok.yaml"
  { echo "---"; cat "$bin/kwok-node-stages.yaml"; } >>"$dir/kwok.yaml"
  kwok_port="$(free_port)"
  "$bin/kwok" --kubeconfig "$STARTED_KUBECONFIG" --config "$dir/kwok.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --cidr 10.244.0.1/16 --node-ip 10.0.0.1 --server-address "127.0.0.1:$kwok_port" \
    >"$dir/kwok.log" 2>&1 &
  pids+=("$!")
  "$TOOLS/bin/kubectl" --kubeconfig "$STARTED_KUBECONFIG" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "500"}
  capacity: {cpu: "64", memory: 256Gi, pods: "500"}
EOF
  echo "control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (node kwok-node-0)"
}
