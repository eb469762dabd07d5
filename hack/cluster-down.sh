#!/usr/bin/env bash
# Tear down what hack/cluster-up.sh created: node2 (hack/node2.sh down), processes (by
# recorded PID), containers, mounts, network namespaces, veths and the bridge, cgroups,
# iptables rules, the service route, sysctls, and the runtime directories. Idempotent: safe
# after a failed or partial up, and when nothing is running. Keeps .cluster/logs for post-mortems.
# --quiet: say nothing when there is nothing to do (used by cluster-up).
set -uo pipefail   # no -e: every step is attempted even when an earlier one fails
source "$(dirname "$0")/lib.sh"
QUIET=${1:-}
say() { [ "$QUIET" = --quiet ] || log "$@"; }

[ "$(id -u)" -eq 0 ] || { log "cluster-down needs root"; exit 1; }

# node2 first: its kubelet and containers, then its namespaces, veth, routes and rules.
"$ROOT/hack/node2.sh" down

# Node first (nothing restarts pods then), the runtime's containers, then the runtime.
stop kube-proxy
stop kubelet
if [ -S "$CONTAINERD_SOCK" ]; then say "removing containers"; remove_containers "${CTR[@]}"; fi
stop containerd
kill_shims "$CONTAINERD_SOCK"
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd

# Mounts: the kubelet root (the kubelet bind-mounts it onto itself) and volumes below it,
# container rootfs/shm under our state dirs, pod network namespaces. Deepest first; lazy
# as a last resort.
our_mounts() {
  awk -v roots="$KUBELET_ROOT $RUN $VARLIB" '
    BEGIN { n = split(roots, r, " ") }
    { for (i = 1; i <= n; i++) if ($2 == r[i] || index($2, r[i] "/") == 1) { print $2; next } }
    $2 ~ "^/run/netns/cni-" { print $2 }' /proc/mounts | sort -r
}
for ((round = 0; round < 3; round++)); do
  mounts=$(our_mounts)
  [ -n "$mounts" ] || break
  for m in $mounts; do umount "$m" 2>/dev/null || { [ $round -lt 2 ] || umount -l "$m" 2>/dev/null; }; done
done

# Pod networking: netns (takes the pods' veth ends with it), the bridge, what is left on it.
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns delete "$ns"; done
if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
  say "deleting bridge $CNI_BRIDGE"
  for l in $(ip -o link show master "$CNI_BRIDGE" | awk -F'[:@ ]+' '{print $2}'); do ip link delete "$l" 2>/dev/null; done
  ip link delete "$CNI_BRIDGE"
fi
# libcni's result cache (hard-coded path): our network's and containerd's loopback entries.
rm -f /var/lib/cni/results/"$CNI_NET"-* /var/lib/cni/results/cni-loopback-*
rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
# `ip netns add` (node2's namespace) made /run/netns a bind mount of itself, once or more.
while [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ] && mountpoint -q /run/netns; do
  umount /run/netns || break
done
rmdir /run/netns 2>/dev/null

# cgroups the kubelet made (cgroupfs driver, cgroup v1: one tree per controller). Processes
# still in them are pod processes whose shim died with a killed run: end them first.
kill_cgroup_procs kubepods
remove_cgroup kubepods
# iptables: kube-proxy's and the kubelet's KUBE-* chains, then our safety rule and route.
if [ -x "$BIN/kube-proxy" ]; then "$BIN/kube-proxy" --cleanup >/dev/null 2>&1; fi
for ipt in iptables ip6tables; do
  for table in filter nat mangle raw; do
    "$ipt" -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j KUBE-' | sed 's/^-A/-D/' |
      while read -r rule; do eval "$ipt -t $table $rule" 2>/dev/null; done
    for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
      "$ipt" -t "$table" -F "$chain" 2>/dev/null
    done
    for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
      "$ipt" -t "$table" -X "$chain" 2>/dev/null
    done
  done
done
IFACE=$(cat "$RUN/iface" 2>/dev/null || node_iface)
while iptables -D FORWARD -s "$CLUSTER_CIDR" -o "$IFACE" -j DROP 2>/dev/null; do :; done
ip route delete "$SERVICE_CIDR" dev lo 2>/dev/null

# Sysctls as they were before cluster-up.
if [ -f "$RUN/sysctls" ]; then
  while IFS='=' read -r key value; do sysctl -qw "$key=$value" 2>/dev/null; done <"$RUN/sysctls"
fi

# Files. Only once nothing is mounted below them (rm must not walk into a live volume).
if [ -n "$(our_mounts)" ]; then
  log "error: mounts remain, not deleting files:"; our_mounts >&2
  exit 1
fi
[ ! -e "$RUN" ] || say "removing $RUN $VARLIB $KUBELET_ROOT"
rm -rf --one-file-system "$KUBELET_ROOT" "$VARLIB" "$RUN" "$(dirname "$POD_LOGS")"
# Symlinks the kubelet made in /var/log/containers point into our pod log dir.
find /var/log/containers -maxdepth 1 -type l -lname "$POD_LOGS/*" -delete 2>/dev/null
# Left by shims, ctr and the kubelet's runc library at hard-coded paths; only if empty.
rmdir /var/log/containers /run/containerd/{s,fifo,runc/k8s.io,runc} /run/containerd /run/runc 2>/dev/null
rm -rf "${CLUSTER:?}"/{bin,etc,pki,images,kube-cache,kubeconfig}
say "cluster down"
exit 0
