#!/usr/bin/env bash
# Tear down what hack/cluster-up.sh created: processes (by recorded PID), containers,
# mounts, network namespaces, veths and the bridge, cgroups, iptables rules, the service
# route, sysctls, and the runtime directories. Idempotent: safe after a failed or partial
# up, and when nothing is running. Keeps .cluster/logs for post-mortems.
# --quiet: say nothing when there is nothing to do (used by cluster-up).
set -uo pipefail   # no -e: every step is attempted even when an earlier one fails
source "$(dirname "$0")/lib.sh"
QUIET=${1:-}
say() { [ "$QUIET" = --quiet ] || log "$@"; }

[ "$(id -u)" -eq 0 ] || { log "cluster-down needs root"; exit 1; }

# stop NAME [BINARY]: TERM the recorded PID, KILL it after 5 s (no state needs saving).
stop() {
  local name=$1 exe=${2:-$1} pid
  pid=$(cat "$RUN/pids/$name" 2>/dev/null) || return 0
  if pid_is "$pid" "$exe"; then
    log "stopping $name ($pid)"
    kill "$pid" 2>/dev/null
    for ((i = 0; i < 10; i++)); do pid_is "$pid" "$exe" || break; sleep 0.5; done
    if pid_is "$pid" "$exe"; then kill -9 "$pid" 2>/dev/null; sleep 0.5; fi
  fi
  rm -f "$RUN/pids/$name"
}

# Node first (nothing restarts pods then), the runtime's containers, then the runtime.
stop kube-proxy
stop kubelet
if [ -S "$CONTAINERD_SOCK" ] && "${CTR[@]}" version >/dev/null 2>&1; then
  tasks=$("${CTR[@]}" tasks ls -q 2>/dev/null)
  [ -z "$tasks" ] || say "removing containers"
  for t in $tasks; do "${CTR[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  # containerd's CRI deletes most exited tasks itself; delete the rest once they stopped.
  for ((i = 0; i < 40; i++)); do
    tasks=$("${CTR[@]}" tasks ls -q 2>/dev/null)
    [ -n "$tasks" ] || break
    for t in $tasks; do "${CTR[@]}" tasks delete "$t" >/dev/null 2>&1; done
    sleep 0.25
  done
  for c in $("${CTR[@]}" containers ls -q 2>/dev/null); do "${CTR[@]}" containers delete "$c" >/dev/null 2>&1; done
fi
stop containerd
# Shims of our containerd that outlived it (their command line names our socket).
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  pid_is "$pid" containerd-shim-runc-v2 || continue
  if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "-address $CONTAINERD_SOCK "; then
    log "killing leftover shim $pid"; kill -9 "$pid" 2>/dev/null
  fi
done
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
rmdir /var/lib/cni/results /var/lib/cni /run/netns 2>/dev/null

# cgroups the kubelet made (cgroupfs driver, cgroup v1: one tree per controller). Processes
# still in them are pod processes whose shim died with a killed run: end them first.
for pid in $(cat /sys/fs/cgroup/pids/kubepods/{,*/,*/*/,*/*/*/}cgroup.procs 2>/dev/null | sort -u); do
  log "killing leftover pod process $pid ($(cat "/proc/$pid/comm" 2>/dev/null))"; kill -9 "$pid" 2>/dev/null
done
sleep 0.2
for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  [ -d "$d" ] && log "warning: could not remove cgroup $d"
done

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
  while IFS== read -r key value; do sysctl -qw "$key=$value" 2>/dev/null; done <"$RUN/sysctls"
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
rm -rf "$CLUSTER"/{bin,etc,pki,images,kube-cache,kubeconfig}
say "cluster down"
exit 0
