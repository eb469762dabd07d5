#!/usr/bin/env bash
# node2: a second real node of the test cluster on this machine, made of namespaces (as kind
# makes nodes of containers). It has its own network namespace joined to the host by a veth
# pair, its own mount namespace in which its own /var/lib and kubelet root are bind-mounted
# (so the DaemonSet's one hostPath lands in node2's own directory), its own
# containerd (root, state, socket), kubelet (cgroupRoot /node2) and kube-proxy.
#
#   hack/node2.sh network    host side: netns, veth, route, safety rules (cluster-up runs it
#                            before any pod sandbox exists)
#   hack/node2.sh up         the node itself (after the control plane and node1 are up)
#   hack/node2.sh down       everything node2 added, also after a failed up (cluster-down)
#   hack/node2.sh exec CMD.. run CMD inside node2's network and mount namespaces
#
# Env for `up`: NODE2_EXTRA_IMAGES (image archives to import besides the cluster's, space
# separated), SECCOMPD_REGISTER_TAINT (0: register without seccompd's taint; see lib.sh).
#
# Every process of node2 is started with nsenter into the namespaces held by one launcher
# process (PID in $RUN/pids/node2-launcher), so the processes share them and a later
# restart (tests) or teardown can join them again.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

NS_EXEC=(ip netns exec "$NODE2_NETNS")
KUBECTL=("$BIN/kubectl" --kubeconfig "$CLUSTER/kubeconfig" --request-timeout=10s)
CURL=(curl -fs --max-time 3)

launcher_pid() {
  local pid
  pid=$(cat "$RUN/pids/node2-launcher" 2>/dev/null) && pid_is "$pid" sleep && echo "$pid"
}

# in_node2 CMD...: CMD in node2's network and mount namespaces.
in_node2() {
  local pid
  pid=$(launcher_pid) || { log "node2 is not running (no launcher)"; return 1; }
  nsenter -t "$pid" -m -n -- "$@"
}

network() {
  set -e
  local iface
  iface=$(cat "$RUN/iface" 2>/dev/null || node_iface)
  ip netns add "$NODE2_NETNS"
  ip link add "$NODE2_HOST_VETH" type veth peer name "$NODE2_HOST_VETH-ns"
  ip link set "$NODE2_HOST_VETH-ns" netns "$NODE2_NETNS"
  ip addr add "$NODE2_HOST_IP/30" dev "$NODE2_HOST_VETH"
  ip link set "$NODE2_HOST_VETH" up
  "${NS_EXEC[@]}" ip link set "$NODE2_HOST_VETH-ns" name eth0
  "${NS_EXEC[@]}" ip addr add "$NODE2_IP/30" dev eth0
  "${NS_EXEC[@]}" ip link set eth0 up
  "${NS_EXEC[@]}" ip link set lo up
  "${NS_EXEC[@]}" ip route add default via "$NODE2_HOST_IP"
  # A new namespace starts with the defaults, not the host's values.
  "${NS_EXEC[@]}" sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  ip route replace "$NODE2_POD_CIDR" via "$NODE2_IP"
  # Network safety, as for node1: nothing from node2 or its pods leaves through the machine's
  # interface. First in the chain, before any rule kube-proxy inserts.
  local net
  for net in "$NODE2_POD_CIDR" "$NODE2_LINK_NET"; do
    iptables -C FORWARD -s "$net" -o "$iface" -j DROP 2>/dev/null ||
      iptables -I FORWARD 1 -s "$net" -o "$iface" -j DROP
  done
  log "node2: network namespace $NODE2_NETNS at $NODE2_IP, pods $NODE2_POD_CIDR"
}

# The launcher: runs inside `ip netns exec` and a fresh, private mount namespace; prepares the
# mounts node2's processes see, then holds the namespaces by sleeping.
launcher() {
  set -e
  mount --make-rprivate /
  # `ip netns exec` mounted a sysfs of its own, with nothing under /sys/fs/cgroup: mount the
  # same cgroup v1 hierarchies as the host (and its cgroup2 tree) again.
  mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
  local dir type opts
  while read -r dir type opts; do
    mkdir -p "$dir"
    mount -t "$type" -o "$opts" "$type" "$dir"
  done <"$NODE2_RUN/cgroup-mounts"
  # Copies of node1's mounts (pod network namespaces, container root filesystems, volumes)
  # would keep them alive here; node2 has none of its own yet.
  awk -v roots="$KUBELET_ROOT $RUN/containerd $VARLIB /run/netns" '
    BEGIN { n = split(roots, r, " ") }
    { for (i = 1; i <= n; i++) if ($2 == r[i] || index($2, r[i] "/") == 1) { print $2; next } }' \
    /proc/self/mounts | sort -r | xargs -r -n1 umount -l
  # node2's own /var/lib, as a node of its own has one (kind's nodes do): a daemon that keeps
  # state there (SPO's /var/lib/security-profiles-operator) must not share node1's. Only the
  # project's directory ($VARLIB: node2's containerd root and logs are in it) is the host's.
  local own=$NODE2_VARLIB/var-lib
  case $VARLIB in /var/lib/*) ;; *) echo "VARLIB ($VARLIB) is not under /var/lib" >&2; exit 1 ;; esac
  mkdir -p "$own/${KUBELET_ROOT#/var/lib/}" "$own/cni" "$own/${VARLIB#/var/lib/}"
  mount --bind "$VARLIB" "$own/${VARLIB#/var/lib/}"
  mount --rbind "$own" /var/lib
  # node2's own directories where a kubelet, containerd's CRI and CNI use fixed paths.
  mount --bind "$NODE2_KUBELET_ROOT" "$KUBELET_ROOT"
  mount --bind "$NODE2_VARLIB/log-containers" /var/log/containers
  mount --bind "$NODE2_VARLIB/cni" /var/lib/cni
  mount --bind "$NODE2_RUN/netns" /run/netns
  # The kubelet needs shared mount propagation (volumes); shared only among node2's mounts.
  mount --make-rshared /
  exec sleep infinity
}

up() {
  set -e
  local pid
  mkdir -p "$NODE2_RUN"/{cni/net.d,netns} "$NODE2_VARLIB"/{kubelet,log-containers,cni,pod-logs} \
    "$KUBELET_ROOT" /var/log/containers /var/lib/cni
  # The cgroup v1 hierarchies to mount inside (dir, type, options), from the host's mounts.
  awk '$2 ~ "^/sys/fs/cgroup/" && ($3 == "cgroup" || $3 == "cgroup2") {print $2, $3, $4}' \
    /proc/1/mounts >"$NODE2_RUN/cgroup-mounts"
  # The kubelet's cgroupRoot must exist in every controller before it starts.
  for c in "${CGROUP_CONTROLLERS[@]}"; do
    [ -d "/sys/fs/cgroup/$c" ] && mkdir -p "/sys/fs/cgroup/$c/$NODE2_CGROUP"
  done
  cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$NODE2_CGROUP/cpuset.cpus"
  cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$NODE2_CGROUP/cpuset.mems"

  start node2-launcher "${NS_EXEC[@]}" unshare -m --propagation private "$0" _launcher
  for ((i = 0; i < 50; i++)); do launcher_pid >/dev/null && break; sleep 0.1; done
  pid=$(launcher_pid) || { log "node2: the launcher did not start:"; tail "$CLUSTER/logs/node2-launcher.log" >&2; exit 1; }
  # Its mounts are in place once /var/lib/kubelet is node2's directory.
  for ((i = 0; i < 50; i++)); do
    [ "$(nsenter -t "$pid" -m stat -c %i "$KUBELET_ROOT")" = "$(stat -c %i "$NODE2_KUBELET_ROOT")" ] && break
    sleep 0.1
  done
  local N=(nsenter -t "$pid" -m -n --)

  write_cni_config "$NODE2_RUN/cni/net.d" "$NODE2_POD_CIDR" "$NODE2_RUN/cni/ipam"
  write_containerd_config 1 "$CLUSTER/etc/containerd-$NODE2.toml" "$NODE2_VARLIB/containerd" \
    "$NODE2_RUN/containerd" "$NODE2_CONTAINERD_SOCK" "$NODE2_RUN/runc" "$NODE2_RUN/cni/net.d"
  start node2-containerd "${N[@]}" "${CONTAINERD_ENV[@]}" "$NODE2_CONTAINERD" --config "$CLUSTER/etc/containerd-$NODE2.toml"
  wait_for node2-containerd serving 30 "${NODE2_CTR[@]}" --timeout 3s version
  import_images "${NODE2_CTR[@]}"
  local image
  for image in ${NODE2_EXTRA_IMAGES:-}; do "${NODE2_CTR[@]}" images import "$image" >/dev/null; done
  log "node2: images imported: $("${NODE2_CTR[@]}" images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

  write_kubelet_config "$CLUSTER/etc/kubelet-$NODE2.yaml" "$NODE2_IP" "$NODE2_CONTAINERD_SOCK" \
    "$NODE2_VARLIB/pod-logs" "$NODE2_CGROUP"
  start node2-kubelet "${N[@]}" "$BIN/kubelet" --config="$CLUSTER/etc/kubelet-$NODE2.yaml" \
    --kubeconfig="$CLUSTER/etc/kubelet-$NODE2.kubeconfig" \
    --hostname-override="$NODE2" --node-ip="$NODE2_IP" --v=2 \
    --node-labels="seccompd.dev/runtime=runc-$(debian_runc_version)"
  wait_for node2-kubelet healthy 60 "${N[@]}" "${CURL[@]}" http://127.0.0.1:10248/healthz
  wait_for node2-kubelet "registered $NODE2" 60 "${KUBECTL[@]}" get node "$NODE2"
  wait_for node2-kubelet "Ready" 120 "${KUBECTL[@]}" wait --for=condition=Ready "node/$NODE2" --timeout=5s

  # Only once the Node exists: before, kube-proxy gives up waiting for it.
  write_kube_proxy_config "$CLUSTER/etc/kube-proxy-$NODE2.yaml" "$NODE2"
  start node2-kube-proxy "${N[@]}" "$BIN/kube-proxy" --config="$CLUSTER/etc/kube-proxy-$NODE2.yaml" --v=1
  wait_for node2-kube-proxy "serving https://$SERVICE_IP" 60 "${N[@]}" "${CURL[@]}" \
    --cacert "$CLUSTER/pki/ca.crt" "https://$SERVICE_IP/readyz"
}

down() {
  local iface net pid
  [ -e "$RUN/pids/node2-launcher" ] || ip netns list 2>/dev/null | grep -qw "$NODE2_NETNS" ||
    ip link show "$NODE2_HOST_VETH" >/dev/null 2>&1 || [ -d "/sys/fs/cgroup/pids/$NODE2_CGROUP" ] || return 0
  stop node2-kube-proxy kube-proxy
  stop node2-kubelet kubelet
  if [ -S "$NODE2_CONTAINERD_SOCK" ]; then remove_containers "${NODE2_CTR[@]}"; fi
  stop node2-containerd containerd
  kill_shims "$NODE2_CONTAINERD_SOCK"
  kill_cgroup_procs "$NODE2_CGROUP"
  # Last: the launcher holds the namespaces (and with them node2's mounts and iptables).
  stop node2-launcher sleep
  remove_cgroup "$NODE2_CGROUP"
  ip netns delete "$NODE2_NETNS" 2>/dev/null
  # The host's end can outlive the namespace for a moment.
  for ((i = 0; i < 20; i++)); do
    ip link show "$NODE2_HOST_VETH" >/dev/null 2>&1 || break
    ip link delete "$NODE2_HOST_VETH" 2>/dev/null
    sleep 0.1
  done
  ip route delete "$NODE2_POD_CIDR" 2>/dev/null
  iface=$(cat "$RUN/iface" 2>/dev/null || node_iface)
  for net in "$NODE2_POD_CIDR" "$NODE2_LINK_NET"; do
    while iptables -D FORWARD -s "$net" -o "$iface" -j DROP 2>/dev/null; do :; done
  done
  rm -rf --one-file-system "$NODE2_RUN" "$NODE2_VARLIB"
  log "node2: down"
}

case "${1:-}" in
  network) network ;;
  _launcher) launcher ;;
  up) up ;;
  down) down ;;
  exec) shift; in_node2 "$@" ;;
  *) echo "usage: $0 network|up|down|exec CMD..." >&2; exit 2 ;;
esac
