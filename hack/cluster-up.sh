#!/usr/bin/env bash
# Bring up the seccompd test cluster on this machine: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd, kubelet and kube-proxy as host
# processes (one real node, node1), then build the seccompd image, import it and deploy
# manifests/. Needs root and the binaries from hack/k8s-bins.sh (`make deps`).
#
# Env: SECCOMPD_DEPLOY=0 brings up the bare cluster only (no image build, no manifests).
# Any cluster left by an earlier run is torn down first, so up always starts clean.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DEPLOY=${SECCOMPD_DEPLOY:-1}

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  [ -x "$BIN/$b" ] || { log "missing $BIN/$b: run 'make deps' (hack/k8s-bins.sh)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { log "cluster-up needs root"; exit 1; }

"$ROOT/hack/cluster-down.sh" --quiet

# Build the image first: a compile error should fail before anything is started.
if [ "$DEPLOY" = 1 ]; then "$ROOT/hack/seccompd-image.sh" "$CLUSTER/images/seccompd.tar"; fi

mkdir -p "$CLUSTER"/{bin,etc,images,logs} "$RUN"/{pids,cni/net.d} "$VARLIB"
rm -f "$CLUSTER"/logs/*.log
ln -sfn "$BIN/kubectl" "$CLUSTER/bin/kubectl"
KUBECTL=("$BIN/kubectl" --kubeconfig "$CLUSTER/kubeconfig" --cache-dir "$CLUSTER/kube-cache" --request-timeout=10s)

# start NAME CMD...: run CMD in the background, log to .cluster/logs/NAME.log, record its PID.
start() {
  local name=$1; shift
  "$@" </dev/null >>"$CLUSTER/logs/$name.log" 2>&1 &
  echo $! >"$RUN/pids/$name"
}

# wait_for NAME WHAT SECONDS CMD...: poll CMD (which must not hang: give it a timeout) until
# it succeeds; fail with the tail of NAME's log if NAME dies or time runs out.
wait_for() {
  local name=$1 what=$2 secs=$3 pid
  local end=$((SECONDS + secs))
  shift 3
  pid=$(cat "$RUN/pids/$name")
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited; last lines of $CLUSTER/logs/$name.log:"
    elif [ $SECONDS -ge $end ]; then
      log "$name: not $what after $secs s; last lines of $CLUSTER/logs/$name.log:"
    else
      sleep 0.5
      continue
    fi
    tail -n 40 "$CLUSTER/logs/$name.log" >&2
    exit 1
  done
  log "$name: $what"
}
CURL=(curl -fs --max-time 3)

# ---------------------------------------------------------------------------- host prep
IFACE=$(node_iface)
NODE_IP=$(node_ip "$IFACE")
[ -n "$NODE_IP" ] || { log "no IPv4 address on the default-route interface '$IFACE'"; exit 1; }
log "node $NODE at $NODE_IP ($IFACE), Kubernetes $K8S_VERSION"

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

# ---------------------------------------------------------------------------- PKI
"$ROOT/hack/gen-pki.sh" "$CLUSTER" "$NODE" "$NODE_IP" "$SERVICE_IP"
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
# One bridge network for pods. ipMasq false: pod traffic is never NATed to the VM's address.
cat >"$RUN/cni/net.d/10-$CNI_NET.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NET",
  "plugins": [{
    "type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
             "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$RUN/cni/ipam"}
  }]
}
EOF

# Own containerd instance (own root, state, socket, CNI dir): never touches a system one.
cat >"$CLUSTER/etc/containerd.toml" <<EOF
version = 2
root = "$VARLIB/containerd"
state = "$RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$CONTAINERD_SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$VARLIB/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # Imported by this script before the kubelet starts; never pulled.
  sandbox_image = "$PAUSE_IMAGE"
  # This VM lacks CAP_SYS_RESOURCE: lowering oom_score_adj (sandboxes get -998) fails and
  # with it every pod, unless containerd clamps the value to its own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false  # cgroupfs, as the kubelet's cgroupDriver
        Root = "$RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni/net.d"
    max_conf_num = 1
EOF
# Images are only ever imported. Should anything still try to pull one, containerd's
# only way out is this proxy: a closed local port (and no DNS lookup of the registry).
start containerd env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
  containerd --config "$CLUSTER/etc/containerd.toml"
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
for image in pause busybox demo seccompd; do
  [ "$image" != seccompd ] || [ "$DEPLOY" = 1 ] || continue
  "${CTR[@]}" images import "$CLUSTER/images/$image.tar" >/dev/null
done
log "images imported: $("${CTR[@]}" images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

# ---------------------------------------------------------------------------- node: kubelet
mkdir -p "$KUBELET_ROOT" "$POD_LOGS"
cat >"$CLUSTER/etc/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This VM has cgroup v1 (hybrid); kubelet 1.35 refuses it unless told (config file only).
failCgroupV1: false
# containerd 1.6 does not report its cgroup driver (no RuntimeConfig RPC): the kubelet
# falls back to this value, which must match containerd's SystemdCgroup = false.
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# The VM cannot lower oom_score_adj (default -999 would only log errors).
oomScoreAdj: 0
failSwapOn: false
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
rotateCertificates: false
serverTLSBootstrap: false
clusterDomain: cluster.local
# No cluster DNS and an empty resolv.conf: pods get no nameserver, so they never try the
# VM's resolver (IP literals only; in-cluster config dials $SERVICE_IP).
resolvConf: ""
podLogsDir: $POD_LOGS
volumePluginDir: $KUBELET_ROOT/volume-plugins  # default is under /usr/libexec
maxPods: 32
# Absolute eviction thresholds; never garbage-collect images (ours cannot be pulled back).
evictionHard: {memory.available: 100Mi, nodefs.available: 512Mi, nodefs.inodesFree: "1%", imagefs.available: 512Mi}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
# As the README tells users: the node registers with this taint and its seccompd agent removes
# it after the first complete sync, so no confined pod lands before its profiles. Not on a
# bare cluster, where no agent would ever remove it.
if [ "$DEPLOY" = 1 ]; then
  cat >>"$CLUSTER/etc/kubelet.yaml" <<EOF
registerWithTaints:
  - {key: seccompd.dev/agent-not-ready, effect: NoSchedule}
EOF
fi
start kubelet "$BIN/kubelet" --config="$CLUSTER/etc/kubelet.yaml" \
  --kubeconfig="$CLUSTER/etc/kubelet.kubeconfig" \
  --hostname-override="$NODE" --node-ip="$NODE_IP" --v=2
wait_for kubelet healthy 60 "${CURL[@]}" http://127.0.0.1:10248/healthz
wait_for kubelet "registered $NODE" 60 "${KUBECTL[@]}" get node "$NODE"
wait_for kubelet "Ready" 120 "${KUBECTL[@]}" wait --for=condition=Ready "node/$NODE" --timeout=5s

# ---------------------------------------------------------------------------- node: kube-proxy
# iptables mode, so pods reach the API at $SERVICE_IP:443 (kube-rs in-cluster config).
cat >"$CLUSTER/etc/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $CLUSTER/etc/kube-proxy.kubeconfig}
hostnameOverride: $NODE
mode: iptables
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [primary]
# Leave conntrack sysctls and route_localnet alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
EOF
start kube-proxy "$BIN/kube-proxy" --config="$CLUSTER/etc/kube-proxy.yaml" --v=1
# Ready when the `kubernetes` Service VIP answers through kube-proxy's DNAT.
wait_for kube-proxy "serving https://$SERVICE_IP" 60 "${CURL[@]}" --cacert "$PKI/ca.crt" "https://$SERVICE_IP/readyz"
# The controller-manager has made the service accounts pods need.
wait_for kube-controller-manager "made service accounts" 60 "${KUBECTL[@]}" -n default get serviceaccount default

# ---------------------------------------------------------------------------- seccompd
if [ "$DEPLOY" = 1 ]; then
  log "deploying manifests/"
  "${KUBECTL[@]}" apply -k "$ROOT/manifests"
  if ! "${KUBECTL[@]}" -n seccompd-system rollout status ds/seccompd-agent --timeout=180s; then
    log "DaemonSet seccompd-agent not ready:"
    "${KUBECTL[@]}" -n seccompd-system get pods -o wide >&2 || true
    "${KUBECTL[@]}" -n seccompd-system describe pods >&2 || true
    "${KUBECTL[@]}" -n seccompd-system logs ds/seccompd-agent --tail=40 >&2 || true
    exit 1
  fi
fi
log "cluster up: export KUBECONFIG=$CLUSTER/kubeconfig; kubectl at $CLUSTER/bin/kubectl"
