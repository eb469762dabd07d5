#!/usr/bin/env bash
# Bring up the seccompd test cluster on this machine: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd, kubelet and kube-proxy as host
# processes (node1, and node2 made of namespaces: hack/node2.sh), then build the seccompd
# image, import it and deploy manifests/. Needs root; installs and builds what is missing
# first (hack/deps.sh: Debian packages; Kubernetes, etcd, containerd and runc from the Go
# module proxy).
#
# Env: SECCOMPD_DEPLOY=0 brings up the bare cluster only (no image build, no manifests);
# NODES=1 brings up node1 only (default 2); K8S_VERSION=vX.Y.Z runs that Kubernetes release
# instead of the pin in tools/k8s (hack/k8s-bins.sh builds and caches it; the scripts that
# act on the cluster afterwards find the version it recorded).
# Any cluster left by an earlier run is torn down first, so up always starts clean.
set -euo pipefail
source "$(dirname "$0")/lib.sh"


[ "$(id -u)" -eq 0 ] || { log "cluster-up needs root"; exit 1; }
case "$NODES" in 1 | 2) ;; *) log "NODES=$NODES: only 1 or 2 nodes are supported"; exit 1 ;; esac
k8s_version_to_build
# Idempotent and quick when everything is there; builds Kubernetes on a fresh machine.
"$ROOT/hack/deps.sh"

"$ROOT/hack/cluster-down.sh" --quiet

# Build the image first: a compile error should fail before anything is started.
if [ "$DEPLOY" = 1 ]; then "$ROOT/hack/seccompd-image.sh" "$CLUSTER/images/seccompd.tar"; fi

mkdir -p "$CLUSTER"/{bin,etc,images,logs} "$RUN"/pids "$VARLIB"
echo "$K8S_VERSION" >"$RUN/k8s-version"
rm -f "$CLUSTER"/logs/*.log
ln -sfn "$BIN/kubectl" "$CLUSTER/bin/kubectl"
KUBECTL=("$BIN/kubectl" --kubeconfig "$CLUSTER/kubeconfig" --cache-dir "$CLUSTER/kube-cache" --request-timeout=10s)

CURL=(curl -fs --max-time 3)

# ---------------------------------------------------------------------------- host prep
IFACE=$(node_iface)
NODE_IP=$(node_ip "$IFACE")
[ -n "$NODE_IP" ] || { log "no IPv4 address on the default-route interface '$IFACE'"; exit 1; }
log "node $NODE at $NODE_IP ($IFACE), Kubernetes $K8S_VERSION, containerd $CONTAINERD_VERSION, runc $RUNC_VERSION"

# Save what we, the kubelet and kube-proxy change, so cluster-down can put it back.
for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$RUN/sysctls"
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 fs.inotify.max_user_instances=512

# Network safety: nothing the cluster does may leave this machine.
# - Service VIPs route to lo: kube-proxy DNATs the ones it knows to local endpoints, any
#   other VIP address dies here instead of following the default route out of $IFACE.
ip route replace "$SERVICE_CIDR" dev lo
# - Pods are never forwarded out of the VM's interface (no masquerade either: the CNI
#   config below has ipMasq false). Pods reach the API via DNAT to this host's own address.
iptables -C FORWARD -s "$CLUSTER_CIDR" -o "$IFACE" -j DROP 2>/dev/null ||
  iptables -I FORWARD -s "$CLUSTER_CIDR" -o "$IFACE" -j DROP
echo "$IFACE" >"$RUN/iface"

# node2's network namespace and its link to the host, now: the first `ip netns add` turns
# /run/netns into a bind mount of itself, which would hide the netns mounts of any pod
# sandbox made before it.
if [ "$NODES" = 2 ]; then "$ROOT/hack/node2.sh" network; fi

# ---------------------------------------------------------------------------- PKI
NODE_NAMES=("$NODE")
[ "$NODES" = 1 ] || NODE_NAMES+=("$NODE2")
"$ROOT/hack/gen-pki.sh" "$CLUSTER" "$NODE_IP" "$SERVICE_IP" "${NODE_NAMES[@]}"
PKI=$CLUSTER/pki

# ---------------------------------------------------------------------------- control plane
start etcd "$BIN/etcd" --name seccompd-e2e --data-dir "$VARLIB/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster seccompd-e2e=http://127.0.0.1:2380 \
  --listen-metrics-urls http://127.0.0.1:2381 --unsafe-no-fsync
wait_for etcd healthy 30 "${CURL[@]}" http://127.0.0.1:2379/health

start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$NODE_IP" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP \
  --profiling=false --v=1
wait_for kube-apiserver ready 90 "${CURL[@]}" --cacert "$PKI/ca.crt" https://127.0.0.1:6443/readyz

start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$CLUSTER/etc/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="$CLUSTER/etc/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="$CLUSTER/etc/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
  --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --profiling=false --v=1

cat >"$CLUSTER/etc/kube-scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: {kubeconfig: $CLUSTER/etc/kube-scheduler.kubeconfig}
leaderElection: {leaderElect: false}
EOF
start kube-scheduler "$BIN/kube-scheduler" --config="$CLUSTER/etc/kube-scheduler.yaml" \
  --authentication-kubeconfig="$CLUSTER/etc/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig="$CLUSTER/etc/kube-scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10259 --v=1
wait_for kube-controller-manager healthy 60 "${CURL[@]}" -k https://127.0.0.1:10257/healthz
wait_for kube-scheduler healthy 60 "${CURL[@]}" -k https://127.0.0.1:10259/healthz

# ---------------------------------------------------------------------------- node: runtime
write_cni_config "$RUN/cni/net.d" "$POD_CIDR" "$RUN/cni/ipam"
write_containerd_config 2 "$CLUSTER/etc/containerd.toml" "$VARLIB/containerd" "$RUN/containerd" \
  "$CONTAINERD_SOCK" "$RUN/runc" "$RUN/cni/net.d"
start containerd "${CONTAINERD_ENV[@]}" "$CONTAINERD" --config "$CLUSTER/etc/containerd.toml"
wait_for containerd serving 30 "${CTR[@]}" --timeout 3s version

# Images, all imported here so that nothing is ever pulled:
# - the sandbox image: our own static pause binary;
# - localhost/busybox:e2e for test pods: Debian's static busybox with its applets linked
#   into /bin (ls, sh, mkdir, ...);
# - $DEMO_IMAGE, the stand-in for the image manifests/examples/ use (hack/demo-image.sh);
# - seccompd, built above.
gcc -static -Os -s -o "$CLUSTER/images/pause" "$ROOT/hack/pause.c"
python3 "$ROOT/hack/mkoci.py" "$CLUSTER/images/pause.tar" "$PAUSE_IMAGE" '["/pause"]' \
  "$CLUSTER/images/pause=/pause"
mapfile -t applets < <(/bin/busybox --list | grep -vx busybox | sed 's|.*|link:/bin/&=busybox|')
python3 "$ROOT/hack/mkoci.py" "$CLUSTER/images/busybox.tar" "$BUSYBOX_IMAGE" '["/bin/sh"]' \
  /bin/busybox=/bin/busybox "${applets[@]}"
"$ROOT/hack/demo-image.sh" "$CLUSTER/images/demo.tar"
[ "$DEPLOY" = 1 ] || rm -f "$CLUSTER/images/seccompd.tar"
import_images "${CTR[@]}"
log "images imported: $("${CTR[@]}" images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

# ---------------------------------------------------------------------------- node: kubelet
mkdir -p "$KUBELET_ROOT" "$POD_LOGS"
write_kubelet_config "$CLUSTER/etc/kubelet.yaml" "$NODE_IP" "$CONTAINERD_SOCK" "$POD_LOGS"
start kubelet "$BIN/kubelet" --config="$CLUSTER/etc/kubelet.yaml" \
  --kubeconfig="$CLUSTER/etc/kubelet-$NODE.kubeconfig" \
  --hostname-override="$NODE" --node-ip="$NODE_IP" --v=2 \
  --node-labels="seccompd.dev/runtime=runc-${RUNC_VERSION#v}"
wait_for kubelet healthy 60 "${CURL[@]}" http://127.0.0.1:10248/healthz
wait_for kubelet "registered $NODE" 60 "${KUBECTL[@]}" get node "$NODE"
wait_for kubelet "Ready" 120 "${KUBECTL[@]}" wait --for=condition=Ready "node/$NODE" --timeout=5s

# ---------------------------------------------------------------------------- node: kube-proxy
write_kube_proxy_config "$CLUSTER/etc/kube-proxy.yaml" "$NODE"
start kube-proxy "$BIN/kube-proxy" --config="$CLUSTER/etc/kube-proxy.yaml" --v=1
# Ready when the `kubernetes` Service VIP answers through kube-proxy's DNAT.
wait_for kube-proxy "serving https://$SERVICE_IP" 60 "${CURL[@]}" --cacert "$PKI/ca.crt" "https://$SERVICE_IP/readyz"
# The controller-manager has made the service accounts pods need.
wait_for kube-controller-manager "made service accounts" 60 "${KUBECTL[@]}" -n default get serviceaccount default

# ---------------------------------------------------------------------------- node2
if [ "$NODES" = 2 ]; then "$ROOT/hack/node2.sh" up; fi

# ---------------------------------------------------------------------------- seccompd
if [ "$DEPLOY" = 1 ]; then
  log "deploying manifests/"
  "$ROOT/hack/apply-manifests.sh"
  if ! "${KUBECTL[@]}" -n seccompd-system rollout status ds/seccompd-agent --timeout=180s; then
    log "DaemonSet seccompd-agent not ready:"
    "${KUBECTL[@]}" -n seccompd-system get pods -o wide >&2 || true
    "${KUBECTL[@]}" -n seccompd-system describe pods >&2 || true
    "${KUBECTL[@]}" -n seccompd-system logs ds/seccompd-agent --tail=40 >&2 || true
    exit 1
  fi
  # The controller writes the statuses tests wait for.
  if ! "${KUBECTL[@]}" -n seccompd-system rollout status deployment/seccompd-controller --timeout=180s; then
    log "Deployment seccompd-controller not ready:"
    "${KUBECTL[@]}" -n seccompd-system get pods -o wide >&2 || true
    "${KUBECTL[@]}" -n seccompd-system logs deployment/seccompd-controller --tail=40 >&2 || true
    exit 1
  fi
fi
log "cluster up: export KUBECONFIG=$CLUSTER/kubeconfig; kubectl at $CLUSTER/bin/kubectl"
