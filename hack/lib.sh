# shellcheck shell=bash
# shellcheck disable=SC2034 # sourced: its variables are for the scripts that source it.
# Shared settings for hack/cluster-up.sh and hack/cluster-down.sh (sourced, not run).
#
# The test cluster is a machine-wide singleton: fixed ports, the kubelet's default root
# /var/lib/kubelet, one node called node1. So the state that tells what is running (PIDs,
# saved sysctls) lives under /run, where any clone of the repo finds it; files a developer
# uses (kubeconfig, kubectl, logs, PKI) live in .cluster/ of the clone that brought it up.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${SECCOMPD_CACHE:-$HOME/.cache/seccompd}  # built tools, outside any clone
RUN=/run/seccompd-e2e           # pids/, saved sysctls, containerd state+socket, runc state, CNI

# k8s_required GO_MOD: the version of k8s.io/kubernetes that GO_MOD requires.
k8s_required() {
  awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}
    $1 == "require" && $2 == "k8s.io/kubernetes" {print $3; exit}' "$1" 2>/dev/null
}
# Kubernetes: the pin in tools/k8s/go.mod, unless K8S_VERSION names another release
# (hack/k8s-bins.sh then generates a module for it in the cache). Scripts that act on a
# running cluster (node2.sh, cluster-down.sh, redeploy.sh, tests) use the version its
# cluster-up recorded, so `K8S_VERSION=... make cluster-up` needs no K8S_VERSION afterwards.
K8S_PIN=$(k8s_required "$ROOT/tools/k8s/go.mod")
K8S_VERSION_GIVEN=${K8S_VERSION:-}
K8S_VERSION=${K8S_VERSION:-$(cat "$RUN/k8s-version" 2>/dev/null || true)}
K8S_VERSION=${K8S_VERSION:-$K8S_PIN}

# k8s_bin_dir VERSION: where hack/k8s-bins.sh caches VERSION's binaries (and etcd's), keyed by
# the version and a digest of the pins and sources in tools/ (so changing the etcd pin, say,
# builds afresh instead of reusing stale ones). Another release than the pin does not depend
# on the pin's go.mod and go.sum.
k8s_bin_dir() {
  local digest
  digest=$(cd "$ROOT/tools" && find . -type f | LC_ALL=C sort |
    if [ "$1" = "$K8S_PIN" ]; then cat; else grep -vx './k8s/go\.\(mod\|sum\)'; fi |
    xargs sha256sum | sha256sum | cut -c1-12)
  echo "$CACHE/k8s/$1-$digest"
}
BIN=$(k8s_bin_dir "$K8S_VERSION")
# k8s_version_to_build: for cluster-up and k8s-bins.sh, which make a cluster or its binaries
# anew: K8S_VERSION if given, else the pin, never the running cluster's.
k8s_version_to_build() {
  K8S_VERSION=${K8S_VERSION_GIVEN:-$K8S_PIN}
  BIN=$(k8s_bin_dir "$K8S_VERSION")
  export K8S_VERSION
}

# Container runtimes. node1 runs current releases built from their Go modules
# (hack/runtime-bins.sh, cached by version); node2 keeps Debian's containerd 1.6 and runc
# 1.1, so the cluster is a mixed fleet as real ones are during an upgrade.
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.5.3
CONTAINERD_BIN=$CACHE/containerd/$CONTAINERD_VERSION   # containerd, containerd-shim-runc-v2, ctr
RUNC_BIN=$CACHE/runc/$RUNC_VERSION                     # runc

CLUSTER=$ROOT/.cluster          # kubeconfig, bin/kubectl, pki/, etc/, logs/, images/
VARLIB=/var/lib/seccompd-e2e    # containerd content + snapshots, etcd data
KUBELET_ROOT=/var/lib/kubelet   # default root: Localhost seccomp profiles resolve below it
POD_LOGS=/var/log/seccompd-e2e/pods

NODE=node1
POD_CIDR=10.244.0.0/24          # the node's pods (static, from the CNI config)
DEPLOY=${SECCOMPD_DEPLOY:-1}   # 0: a bare cluster, without seccompd (no image, no manifests)
NODES=${NODES:-2}               # 2: node1 plus node2 (hack/node2.sh); 1: node1 only

# node2: a second real node on this machine, made of namespaces (hack/node2.sh). Its network
# namespace is joined to the host by a veth pair; its addresses exist only on this machine.
NODE2=node2
NODE2_NETNS=seccompd-node2
NODE2_HOST_VETH=sd-node2        # host end; the other end is eth0 inside the namespace
NODE2_HOST_IP=10.250.0.1        # host end of the /30
NODE2_IP=10.250.0.2             # node2's own address (kubelet, kube-proxy, node InternalIP)
NODE2_LINK_NET=10.250.0.0/30
NODE2_POD_CIDR=10.244.1.0/24
NODE2_RUN=$RUN/node2            # containerd state+socket, runc state, CNI, node2's /run/netns
NODE2_VARLIB=$VARLIB/node2      # containerd root, node2's kubelet root, CNI cache, logs
NODE2_KUBELET_ROOT=$NODE2_VARLIB/kubelet   # seen as /var/lib/kubelet inside node2
NODE2_CONTAINERD_SOCK=$NODE2_RUN/containerd/containerd.sock
NODE2_CONTAINERD=/usr/bin/containerd   # Debian's 1.6, with Debian's shim and runc on PATH

# The version of Debian's runc, node2's (1.1.5 from "runc version 1.1.5+ds1"), for its
# seccompd.dev/runtime label.
debian_runc_version() {
  /usr/sbin/runc --version | awk 'NR==1 {sub(/[+~-].*/, "", $3); print $3}'
}
NODE2_CTR=(/usr/bin/ctr --address "$NODE2_CONTAINERD_SOCK" --namespace k8s.io)
NODE2_CGROUP=node2              # the kubelet's cgroupRoot, in every v1 controller
CGROUP_CONTROLLERS=(blkio cpu cpuacct cpuset devices freezer memory pids systemd)
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/24
SERVICE_IP=10.96.0.1            # `kubernetes` Service: what in-cluster clients dial
CNI_NET=seccompd-e2e            # CNI network name; libcni caches results under this name
CNI_BRIDGE=cni0
CONTAINERD_SOCK=$RUN/containerd/containerd.sock
CONTAINERD=$CONTAINERD_BIN/containerd
# ctr 2 would repeat containerd's deprecation warnings (cgroup v1 here) on every call.
CTR=(env CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1 "$CONTAINERD_BIN/ctr" --address "$CONTAINERD_SOCK" --namespace k8s.io)
# Images are named under localhost/: if one were ever missing, a pull attempt could only
# dial this machine, never a registry outside.
PAUSE_IMAGE=localhost/seccompd-pause:1
SECCOMPD_IMAGE=localhost/seccompd:dev
BUSYBOX_IMAGE=localhost/busybox:e2e   # for test pods: sh, ls, mkdir, ... (Debian busybox-static)
# Stand-in for the image manifests/examples/ name (see hack/demo-image.sh): imported, never pulled.
DEMO_IMAGE=docker.io/library/debian:bookworm-slim

# Sysctls that cluster-up, the kubelet or kube-proxy change; saved by up, restored by down.
SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables fs.inotify.max_user_instances
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet)

log() { echo "[$(date +%T)] $*" >&2; }

# Interface of the default route (eth0 on these VMs) and its IPv4 address.
node_iface() { ip -4 route show default | awk '{for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}'; }
node_ip() { ip -4 -o addr show dev "$1" | awk '{split($4,a,"/"); print a[1]; exit}'; }

# True if PID is alive and runs the binary named NAME (guards against reused PIDs).
pid_is() {
  local pid=$1 name=$2 exe
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "$(basename "${exe% (deleted)}")" = "$name" ]
}

# ---------------------------------------------------------------------------- processes
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

# stop NAME [BINARY]: TERM the recorded PID, KILL it after 5 s (no state needs saving).
stop() {
  local name=$1 exe=${2:-$1} pid i
  pid=$(cat "$RUN/pids/$name" 2>/dev/null) || return 0
  if pid_is "$pid" "$exe"; then
    log "stopping $name ($pid)"
    kill "$pid" 2>/dev/null
    for ((i = 0; i < 10; i++)); do pid_is "$pid" "$exe" || break; sleep 0.5; done
    if pid_is "$pid" "$exe"; then kill -9 "$pid" 2>/dev/null; sleep 0.5; fi
  fi
  rm -f "$RUN/pids/$name"
}

# remove_containers CTR...: kill and delete every task and container of a containerd that
# serves (CTR is its ctr command line).
remove_containers() {
  local tasks t c i
  "$@" version >/dev/null 2>&1 || return 0
  tasks=$("$@" tasks ls -q 2>/dev/null)
  for t in $tasks; do "$@" tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  # containerd's CRI deletes most exited tasks itself; delete the rest once they stopped.
  for ((i = 0; i < 40; i++)); do
    tasks=$("$@" tasks ls -q 2>/dev/null)
    [ -n "$tasks" ] || break
    for t in $tasks; do "$@" tasks delete "$t" >/dev/null 2>&1; done
    sleep 0.25
  done
  for c in $("$@" containers ls -q 2>/dev/null); do "$@" containers delete "$c" >/dev/null 2>&1; done
}

# kill_shims SOCKET: shims of the containerd at SOCKET that outlived it (their command line
# names the socket).
kill_shims() {
  local sock=$1 p pid
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    pid_is "$pid" containerd-shim-runc-v2 || continue
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "-address $sock "; then
      log "killing leftover shim $pid"; kill -9 "$pid" 2>/dev/null
    fi
  done
}

# kill_cgroup_procs CGROUP: SIGKILL every process in CGROUP (a path below the v1 pids
# controller) and its descendants: pod processes whose shim died with a killed run.
kill_cgroup_procs() {
  local dir=/sys/fs/cgroup/pids/$1 pid
  [ -d "$dir" ] || return 0
  for pid in $(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
    log "killing leftover process $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) in $1"
    kill -9 "$pid" 2>/dev/null
  done
  sleep 0.2
}

# remove_cgroup CGROUP: remove CGROUP from every v1 controller, deepest first.
remove_cgroup() {
  local d
  for d in /sys/fs/cgroup/*/"$1"; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$d" ] && log "warning: could not remove cgroup $d"
  done
  return 0
}

# ---------------------------------------------------------------------------- node configs
# The same node configuration for node1 and node2, differing only in what is given here.

# write_cni_config DIR SUBNET IPAM_DIR: one bridge network for pods. ipMasq false: pod
# traffic is never NATed to the node's address.
write_cni_config() {
  mkdir -p "$1"
  cat >"$1/10-$CNI_NET.conflist" <<EOF2
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NET",
  "plugins": [{
    "type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "$2"}]],
             "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$3"}
  }]
}
EOF2
}

# write_containerd_config MAJOR OUT ROOT STATE SOCKET RUNC_ROOT CNI_CONF_DIR: an own
# containerd instance (own root, state, socket, CNI dir) that never touches a system one.
# The settings are the same on both nodes; where they live differs between containerd 2
# (MAJOR 2: node1's, config version 3, with its own shim and runc) and containerd 1.6
# (MAJOR 1: Debian's on node2, version 2).
write_containerd_config() {
  local major=$1 out=$2 root=$3 state=$4 sock=$5 runc_root=$6 cni_conf=$7
  # Imported by cluster-up before the kubelet starts; never pulled.
  local sandbox_image=$PAUSE_IMAGE
  # This VM lacks CAP_SYS_RESOURCE: lowering oom_score_adj (sandboxes get -998) fails and
  # with it every pod, unless containerd clamps the value to its own.
  local restrict_oom_score_adj=true
  cat >"$out" <<EOF2
version = $((major + 1))
root = "$root"
state = "$state"
# Snapshotters not used; NRI (containerd 2) would listen on a socket of the whole machine.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.nri.v1.nri"]

[grpc]
  address = "$sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "$root/opt"
EOF2
  case $major in
    2) cat >>"$out" <<EOF2

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$sandbox_image"

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = $restrict_oom_score_adj
  # containerd 2 opens ports below 1024 and ping to every UID in a pod's network namespace
  # by default (ip_unprivileged_port_start=0); containerd 1.6, as on node2, does not, and a
  # non-root container needs NET_BIND_SERVICE for port 80 on either node.
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      # containerd 2 looks for its shim on PATH before beside itself, and Debian's 1.6 shim
      # is on PATH.
      runtime_path = "$CONTAINERD_BIN/containerd-shim-runc-v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        # cgroupfs; containerd 2 reports it to the kubelet (RuntimeConfig).
        SystemdCgroup = false
        BinaryName = "$RUNC_BIN/runc"
        Root = "$runc_root"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$cni_conf"
    max_conf_num = 1
EOF2
      ;;
    1) cat >>"$out" <<EOF2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$sandbox_image"
  restrict_oom_score_adj = $restrict_oom_score_adj
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false  # cgroupfs, as the kubelet's cgroupDriver
        Root = "$runc_root"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$cni_conf"
    max_conf_num = 1
EOF2
      ;;
    *) log "write_containerd_config: containerd $major is not known"; return 1 ;;
  esac
}

# Images are only ever imported. Should anything still try to pull one, containerd's only way
# out is this proxy: a closed local port (and no DNS lookup of the registry).
CONTAINERD_ENV=(env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=)

# import_images CTR...: import the images cluster-up packed into $CLUSTER/images.
import_images() {
  local image
  for image in pause busybox demo seccompd; do
    [ -f "$CLUSTER/images/$image.tar" ] || continue
    "$@" images import "$CLUSTER/images/$image.tar" >/dev/null
  done
}

# write_kubelet_config OUT ADDRESS RUNTIME_SOCKET POD_LOGS_DIR [CGROUP_ROOT]
write_kubelet_config() {
  local out=$1 address=$2 sock=$3 pod_logs=$4 cgroup_root=${5:-}
  cat >"$out" <<EOF2
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This VM has cgroup v1 (hybrid); kubelets since 1.35 refuse it unless told (config file only).
failCgroupV1: false
# containerd 2 (node1) reports its cgroup driver (the RuntimeConfig call); containerd 1.6
# (node2) cannot, and the kubelet (through 1.37) falls back to this value, which must match
# containerd's SystemdCgroup = false.
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$sock
# The VM cannot lower oom_score_adj (default -999 would only log errors).
oomScoreAdj: 0
failSwapOn: false
address: $address
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $CLUSTER/pki/ca.crt}
authorization: {mode: Webhook}
rotateCertificates: false
serverTLSBootstrap: false
clusterDomain: cluster.local
# No cluster DNS and an empty resolv.conf: pods get no nameserver, so they never try the
# VM's resolver (IP literals only; in-cluster config dials $SERVICE_IP).
resolvConf: ""
podLogsDir: $pod_logs
volumePluginDir: $KUBELET_ROOT/volume-plugins  # default is under /usr/libexec
maxPods: 32
# Absolute eviction thresholds; never garbage-collect images (ours cannot be pulled back).
evictionHard: {memory.available: 100Mi, nodefs.available: 512Mi, nodefs.inodesFree: "1%", imagefs.available: 512Mi}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF2
  if [ -n "$cgroup_root" ]; then
    echo "# Its own cgroup tree, so two kubelets on one machine never manage the same cgroups." >>"$out"
    echo "cgroupRoot: /$cgroup_root" >>"$out"
  fi
  # As docs/operations.md tells users: the node registers with this taint and its seccompd agent
  # removes it after the first complete sync, so no confined pod lands before its profiles.
  # Not on a bare cluster, where no agent would ever remove it, nor when told
  # (SECCOMPD_REGISTER_TAINT=0: make bench-spo joins node2 for SPO, with seccompd paused).
  if [ "${SECCOMPD_REGISTER_TAINT:-$DEPLOY}" = 1 ]; then
    cat >>"$out" <<EOF2
registerWithTaints:
  - {key: seccompd.dev/agent-not-ready, effect: NoSchedule}
EOF2
  fi
}

# write_kube_proxy_config OUT NODE: iptables mode, so pods reach the API at $SERVICE_IP:443
# (kube-rs in-cluster config). Each node's kube-proxy programs its own network namespace.
write_kube_proxy_config() {
  cat >"$1" <<EOF2
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $CLUSTER/etc/kube-proxy.kubeconfig}
hostnameOverride: $2
mode: iptables
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [primary]
# Leave conntrack sysctls and route_localnet alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
EOF2
}
