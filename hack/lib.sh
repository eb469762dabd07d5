# Shared settings for hack/cluster-up.sh and hack/cluster-down.sh (sourced, not run).
#
# The test cluster is a machine-wide singleton: fixed ports, the kubelet's default root
# /var/lib/kubelet, one node called node1. So the state that tells what is running (PIDs,
# saved sysctls) lives under /run, where any clone of the repo finds it; files a developer
# uses (kubeconfig, kubectl, logs, PKI) live in .cluster/ of the clone that brought it up.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
K8S_VERSION=$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$ROOT/tools/k8s/go.mod")
# The binaries hack/k8s-bins.sh builds, cached by the version and a digest of every pin and
# source in tools/ (so changing the etcd pin, say, builds afresh instead of reusing stale ones).
PINS_DIGEST=$(cd "$ROOT/tools" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
CACHE=${SECCOMPD_CACHE:-$HOME/.cache/seccompd}  # built tools, outside any clone
BIN=$CACHE/k8s/$K8S_VERSION-$PINS_DIGEST

CLUSTER=$ROOT/.cluster          # kubeconfig, bin/kubectl, pki/, etc/, logs/, images/
RUN=/run/seccompd-e2e           # pids/, saved sysctls, containerd state+socket, runc state, CNI
VARLIB=/var/lib/seccompd-e2e    # containerd content + snapshots, etcd data
KUBELET_ROOT=/var/lib/kubelet   # default root: Localhost seccomp profiles resolve below it
POD_LOGS=/var/log/seccompd-e2e/pods

NODE=node1
POD_CIDR=10.244.0.0/24          # the node's pods (static, from the CNI config)
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/24
SERVICE_IP=10.96.0.1            # `kubernetes` Service: what in-cluster clients dial
CNI_NET=seccompd-e2e            # CNI network name; libcni caches results under this name
CNI_BRIDGE=cni0
CONTAINERD_SOCK=$RUN/containerd/containerd.sock
CTR=(ctr --address "$CONTAINERD_SOCK" --namespace k8s.io)
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
