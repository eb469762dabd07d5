#!/usr/bin/env bash
# make bench-spo: seccompd and the Security Profiles Operator (SPO) side by side on the
# running test cluster (make cluster-up), one after the other, with the same workload
# (crates/e2e/benches/vs_spo). Needs root (reads both nodes' kubelet directories and /proc).
#
# 1. builds SPO's binary from the snapshot in ../shared/peers/ (cached by the snapshot's
#    commit under ~/.cache/seccompd/spo/<commit>/) and packs it as an image like ours
#    (hack/mkoci.py), imported into node1's and node2's containerd;
# 2. runs the workload through seccompd as deployed; its last phase takes node2 down and
#    brings it back as a new node (hack/node2.sh), timing a pod with a profile there;
# 3. pauses seccompd (its DaemonSet gets a nodeSelector no node matches, its controller 0
#    replicas), deploys SPO from its own deploy/operator.yaml with the smallest changes to
#    run without cert-manager (see deploy_spo), waits for its daemon on every node and runs
#    the same workload through SPO;
# 4. removes everything of SPO (objects, CRDs, webhooks, namespace, files it left on the
#    nodes, its image) and brings seccompd back, also on failure or Ctrl-C (trap);
# 5. prints one table with both systems, the ratio per figure and a `vs-spo:` line, and writes
#    them as a results file, docs/results/vs-spo-<UTC time>.json (crates/e2e/src/results.rs).
# A step of SPO that fails stops the SPO part with a message naming the step; the figures
# measured until then are still printed.
#
# The cluster must be the one this checkout's `make cluster-up` brought up: the new-node phase
# restarts node2 with hack/node2.sh, which uses this checkout's .cluster/ files.
#
# Env: BENCH_SPO_OUT (where results go, default target/bench-spo/<UTC time>), BENCH_SPO_ARGS
# (extra arguments for the workload, e.g. "--generated 10 --bulk 100" for a quick run).
set -uo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBECONFIG_FILE=$CLUSTER/kubeconfig
KUBECTL=("$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" --request-timeout=30s)
PEERS=$ROOT/../shared/peers
OUT=${BENCH_SPO_OUT:-$ROOT/target/bench-spo/$(date -u +%Y%m%dT%H%M%SZ)}
SPO_NS=security-profiles-operator
SPO_GROUP=security-profiles-operator.x-k8s.io
# Where SPO's daemon keeps its profiles (config.OperatorRoot); the kubelet's seccomp/operator
# is a symlink to it. node1's is the host's; node2 has a /var/lib of its own (hack/node2.sh).
SPO_HOST_ROOT=/var/lib/security-profiles-operator
NODE2_SPO_ROOT=$NODE2_VARLIB/var-lib/security-profiles-operator
SECCOMPD_NS=seccompd-system
PAUSE_LABEL=seccompd.dev/bench-spo-paused
# Each node's kubelet root and /var/lib on this host; node2 is taken down and brought back as
# a new node (the workload's last phase).
NODE_ARGS=("--node-root=node1=$KUBELET_ROOT" "--node-root=node2=$NODE2_KUBELET_ROOT"
  "--node-var-lib=node2=$NODE2_VARLIB/var-lib" "--rejoin=node2" "--node-script=$ROOT/hack/node2.sh")
WORKLOAD=(cargo bench -q -p seccompd-e2e --bench vs_spo --)
# shellcheck disable=SC2206 # word splitting of the extra arguments is intended
EXTRA_ARGS=(${BENCH_SPO_ARGS:-})

mkdir -p "$OUT/spo"
k() { "${KUBECTL[@]}" "$@"; }

# ---------------------------------------------------------------------------- steps
# step NAME FUNCTION: runs FUNCTION (with -e); on failure records NAME as the step where SPO
# stopped (shown by the report) and returns 1.
step() {
  local name=$1
  log "step: $name"
  if ! (set -e; "$2"); then
    log "FAILED: SPO step '$name'"
    echo "$name" >>"$OUT/spo-failed-step"
    return 1
  fi
}

# ---------------------------------------------------------------------------- build
spo_tarball() {
  local t
  for t in "$PEERS"/security-profiles-operator-*.tar.gz; do
    [ -f "$t" ] && { echo "$t"; return 0; }
  done
  log "no SPO snapshot in $PEERS"
  return 1
}

# The binary, built once per snapshot commit as SPO's own Makefile builds it (static,
# stripped, without BPF), with the peers README's build tags.
build_spo() {
  local tarball commit dir
  tarball=$(spo_tarball)
  commit=$(gzip -dc "$tarball" | git get-tar-commit-id)
  [ -n "$commit" ] || { log "$tarball carries no commit id"; return 1; }
  dir=$CACHE/spo/$commit
  echo "$commit" >"$OUT/spo/commit"
  if [ ! -x "$dir/security-profiles-operator" ]; then
    dpkg -s libseccomp-dev >/dev/null 2>&1 || apt-get install -y libseccomp-dev >/dev/null
    if [ ! -d "$dir/src" ]; then
      rm -rf "$dir/src.tmp" && mkdir -p "$dir/src.tmp"
      tar xzf "$tarball" -C "$dir/src.tmp" --strip-components=1
      mv "$dir/src.tmp" "$dir/src"
    fi
    log "building SPO $commit (about 4 min on 2 cores)"
    (cd "$dir/src" && CGO_ENABLED=1 CGO_LDFLAGS=-lseccomp go build -mod=vendor -trimpath \
      -tags 'netgo osusergo no_bpf seccomp' \
      -ldflags "-s -w -linkmode external -extldflags -static -X sigs.k8s.io/security-profiles-operator/internal/pkg/version.version=$(cat VERSION)" \
      -o ../security-profiles-operator.tmp ./cmd/security-profiles-operator)
    mv "$dir/security-profiles-operator.tmp" "$dir/security-profiles-operator"
  fi
  echo "$dir" >"$OUT/spo/cache"
  echo "$(cat "$dir/src/VERSION")+${commit:0:12}" >"$OUT/spo/version"
}

spo_cache() { cat "$OUT/spo/cache"; }
spo_image() { echo "localhost/security-profiles-operator:$(cut -c1-12 "$OUT/spo/commit")"; }

# Its image as SPO's Dockerfile makes it (the binary at /, user 65535), packed like ours.
image_spo() {
  local cache
  cache=$(spo_cache)
  if [ ! -f "$cache/image.tar" ]; then
    MKOCI_USER=65535:65535 python3 "$ROOT/hack/mkoci.py" "$cache/image.tar.tmp" "$(spo_image)" \
      '["/security-profiles-operator"]' "$cache/security-profiles-operator=/security-profiles-operator"
    mv "$cache/image.tar.tmp" "$cache/image.tar"
  fi
  "${CTR[@]}" images import "$cache/image.tar" >/dev/null
  "${NODE2_CTR[@]}" images import "$cache/image.tar" >/dev/null
}

# ---------------------------------------------------------------------------- seccompd
seccompd_ready() {
  k -n "$SECCOMPD_NS" rollout status ds/seccompd-agent --timeout=180s &&
    k -n "$SECCOMPD_NS" rollout status deployment/seccompd-controller --timeout=180s
}

# Scales seccompd away: no agent on any node (a nodeSelector no node has), no controller.
# What to restore is saved first, so restore_seccompd works from any point.
pause_seccompd() {
  if [ ! -f "$OUT/seccompd-node-selector.json" ]; then
    k -n "$SECCOMPD_NS" get ds seccompd-agent -o jsonpath='{.spec.template.spec.nodeSelector}' \
      >"$OUT/seccompd-node-selector.json"
    k -n "$SECCOMPD_NS" get deployment seccompd-controller -o jsonpath='{.spec.replicas}' \
      >"$OUT/seccompd-controller-replicas"
  fi
  local selector
  selector=$(python3 -c 'import json,sys; s=json.loads(sys.argv[1] or "{}"); s[sys.argv[2]]="true"; print(json.dumps(s))' \
    "$(cat "$OUT/seccompd-node-selector.json")" "$PAUSE_LABEL")
  k -n "$SECCOMPD_NS" patch ds seccompd-agent --type=merge \
    -p "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":$selector}}}}" >/dev/null
  k -n "$SECCOMPD_NS" scale deployment seccompd-controller --replicas=0 >/dev/null
  k -n "$SECCOMPD_NS" wait --for=delete pod -l app.kubernetes.io/name=seccompd --timeout=120s >/dev/null
  log "seccompd paused (no agent, no controller)"
}

restore_seccompd() {
  [ -f "$OUT/seccompd-node-selector.json" ] || return 0
  local selector replicas
  selector=$(cat "$OUT/seccompd-node-selector.json")
  replicas=$(cat "$OUT/seccompd-controller-replicas")
  # A JSON patch replaces the whole selector (a merge patch would keep the pause label).
  if [ -n "$selector" ]; then
    k -n "$SECCOMPD_NS" patch ds seccompd-agent --type=json \
      -p "[{\"op\":\"replace\",\"path\":\"/spec/template/spec/nodeSelector\",\"value\":$selector}]" >/dev/null
  else
    k -n "$SECCOMPD_NS" patch ds seccompd-agent --type=json \
      -p '[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]' >/dev/null
  fi
  k -n "$SECCOMPD_NS" scale deployment seccompd-controller --replicas="${replicas:-2}" >/dev/null
  seccompd_ready >/dev/null && log "seccompd restored and ready"
}

# ---------------------------------------------------------------------------- SPO deploy
# The certificates cert-manager would issue (its self-signed Issuer), from one throwaway CA.
make_certs() {
  local dir=$OUT/spo/pki name
  mkdir -p "$dir" && cd "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -sha256 \
    -subj "/CN=bench-spo-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  for name in webhook metrics; do
    local san
    if [ $name = webhook ]; then
      san="DNS:webhook-service.$SPO_NS.svc,DNS:webhook-service.$SPO_NS.svc.cluster.local"
    else
      san="DNS:metrics.$SPO_NS,DNS:metrics.$SPO_NS.svc,DNS:metrics.$SPO_NS.svc.cluster.local"
    fi
    openssl req -newkey rsa:2048 -nodes -keyout $name.key -out $name.csr -subj "/O=$SPO_NS/CN=$name" 2>/dev/null
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
      "$san" >$name.ext
    openssl x509 -req -in $name.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -sha256 \
      -extfile $name.ext -out $name.crt 2>/dev/null
  done
}

# operator.yaml with the changes this cluster needs, nothing else: our image (never pulled:
# IfNotPresent instead of Always) and the CA bundle of the CRDs' conversion webhook, which
# cert-manager's cainjector would have set.
write_manifest() {
  python3 - "$(spo_cache)/src/deploy/operator.yaml" "$OUT/spo/operator.yaml" "$(spo_image)" \
    "$OUT/spo/pki/ca.crt" <<'EOF'
import base64, sys, yaml
src, out, image, ca = sys.argv[1:]
bundle = base64.b64encode(open(ca, "rb").read()).decode()
docs = [d for d in yaml.safe_load_all(open(src)) if d]
for d in docs:
    if d["kind"] == "Deployment" and d["metadata"]["name"] == "security-profiles-operator":
        for c in d["spec"]["template"]["spec"]["containers"]:
            c["image"], c["imagePullPolicy"] = image, "IfNotPresent"
    if d["kind"] == "CustomResourceDefinition":
        hook = d["spec"].get("conversion", {}).get("webhook")
        if hook:
            hook["clientConfig"]["caBundle"] = bundle
yaml.safe_dump_all(docs, open(out, "w"), sort_keys=False)
EOF
}

# Without cert-manager's CRDs SPO's operator fails at its first step (creating an Issuer
# and two Certificates) and never creates its daemon. Two schema-less CRDs of those kinds let
# it create them; nothing acts on them: the Secrets they stand for are made here.
CERT_MANAGER_CRDS=(issuers.cert-manager.io certificates.cert-manager.io)
stub_cert_manager() {
  local crd kind plural
  for crd in "${CERT_MANAGER_CRDS[@]}"; do
    if k get crd "$crd" >/dev/null 2>&1; then continue; fi
    plural=${crd%%.*}
    kind=$(python3 -c 'import sys; print(sys.argv[1][:-1].capitalize())' "$plural")
    echo "$crd" >>"$OUT/spo/stub-crds"
    k apply -f - >/dev/null <<EOF
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: $crd, labels: {app: bench-spo-stub}}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: $kind, plural: $plural, singular: ${plural%s}, listKind: ${kind}List}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
EOF
  done
  for crd in "${CERT_MANAGER_CRDS[@]}"; do
    k wait --for=condition=Established "crd/$crd" --timeout=60s >/dev/null
  done
}

snapshot_node_dirs() {
  ls -A "$KUBELET_ROOT/seccomp" >"$OUT/spo/node1-seccomp-before" 2>/dev/null || true
  ls -A "$NODE2_KUBELET_ROOT/seccomp" >"$OUT/spo/node2-seccomp-before" 2>/dev/null || true
  [ -e "$SPO_HOST_ROOT" ] && touch "$OUT/spo/host-root-existed"
  return 0
}

deploy_spo() {
  snapshot_node_dirs
  # node2 is a new node since the seccompd run's last phase: its image store is empty.
  "${NODE2_CTR[@]}" images import "$(spo_cache)/image.tar" >/dev/null
  make_certs
  write_manifest
  stub_cert_manager
  k apply --server-side --force-conflicts -f "$OUT/spo/operator.yaml" >/dev/null
  local name
  for name in webhook metrics; do
    k -n "$SPO_NS" create secret generic "$name-server-cert" --type=kubernetes.io/tls \
      --from-file=tls.crt="$OUT/spo/pki/$name.crt" --from-file=tls.key="$OUT/spo/pki/$name.key" \
      --from-file=ca.crt="$OUT/spo/pki/ca.crt" >/dev/null
  done
}

wait_operator() {
  k -n "$SPO_NS" rollout status deployment/security-profiles-operator --timeout=240s
}

# The operator creates its daemon's DaemonSet (spod) and its webhook once it has its config.
wait_daemon() {
  local end=$((SECONDS + 180)) nodes
  until k -n "$SPO_NS" get ds spod >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { log "the operator did not create DaemonSet spod in 180 s"; k -n "$SPO_NS" logs deployment/security-profiles-operator --tail=30 >&2; return 1; }
    sleep 2
  done
  if ! k -n "$SPO_NS" rollout status ds/spod --timeout=300s; then
    k -n "$SPO_NS" get pods -o wide >&2
    k -n "$SPO_NS" describe pods -l name=spod >&2 | tail -n 40
    return 1
  fi
  nodes=$(k get nodes -o name | wc -l)
  [ "$(k -n "$SPO_NS" get ds spod -o jsonpath='{.status.numberReady}')" = "$nodes" ] ||
    { log "spod is not ready on all $nodes nodes"; return 1; }
  log "SPO daemon ready on $nodes nodes"
}

# Its webhook's serving certificate is ours; the CA bundle goes where cert-manager's
# cainjector would put it, once the operator created the configurations.
wait_webhook() {
  local end=$((SECONDS + 120)) kind name count i bundle
  bundle=$(base64 -w0 "$OUT/spo/pki/ca.crt")
  until k -n "$SPO_NS" get deployment security-profiles-operator-webhook >/dev/null 2>&1 &&
    k get validatingwebhookconfiguration spo-validating-webhook-configuration >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { log "the operator did not create its webhook in 120 s"; return 1; }
    sleep 2
  done
  k -n "$SPO_NS" rollout status deployment/security-profiles-operator-webhook --timeout=240s
  for kind in mutatingwebhookconfiguration/spo-mutating-webhook-configuration \
    validatingwebhookconfiguration/spo-validating-webhook-configuration; do
    name=${kind#*/}
    count=$(k get "$kind" -o jsonpath='{range .webhooks[*]}x{end}' | wc -c)
    local patch="["
    for ((i = 0; i < count; i++)); do
      patch+="{\"op\":\"add\",\"path\":\"/webhooks/$i/clientConfig/caBundle\",\"value\":\"$bundle\"},"
    done
    k patch "$kind" --type=json -p "${patch%,}]" >/dev/null
    log "CA bundle set on $name ($count webhooks)"
  done
}

# What the operator's daemon configuration switches on: recording, SELinux, AppArmor stay
# off (the defaults outside OpenShift); recorded for the report.
record_spod_config() {
  k -n "$SPO_NS" get securityprofilesoperatordaemons spod -o json | python3 -c '
import json, sys
s = json.load(sys.stdin)["spec"]
e = s.get("enricher", {})
print("selinux=%s apparmor=%s log_enricher=%s json_enricher=%s bpf_recorder=%s webhook_static=%s" % (
    s.get("selinux", {}).get("enable", False), s.get("enableAppArmor", False),
    e.get("enableLogEnricher", False), e.get("enableJsonEnricher", False),
    e.get("enableBpfRecorder", False), s.get("webhook", {}).get("staticConfig", False)))' \
    >"$OUT/spo/spod-config"
  log "SPO daemon config: $(cat "$OUT/spo/spod-config")"
}

# ---------------------------------------------------------------------------- SPO removal
# Everything deploy_spo and SPO itself created, from any point. Profiles go first, while
# SPO's daemon can still release its finalizers; what is still stuck afterwards has its
# finalizers removed, so that the namespace and CRDs can go.
remove_spo() {
  local r
  if k get crd "seccompprofiles.$SPO_GROUP" >/dev/null 2>&1; then
    for r in $(k api-resources --api-group="$SPO_GROUP" -o name 2>/dev/null); do
      [ "$r" = "securityprofilesoperatordaemons.$SPO_GROUP" ] && continue
      k delete "$r" --all -A --wait=false >/dev/null 2>&1
    done
    for r in $(k api-resources --api-group="$SPO_GROUP" -o name 2>/dev/null); do
      [ "$r" = "securityprofilesoperatordaemons.$SPO_GROUP" ] && continue
      k wait --for=delete "$r" --all -A --timeout=60s >/dev/null 2>&1 || true
    done
    for r in $(k api-resources --api-group="$SPO_GROUP" -o name 2>/dev/null); do
      k get "$r" -A -o jsonpath='{range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{"\n"}{end}' 2>/dev/null |
        while read -r ns name; do
          [ -n "$name" ] || continue
          log "removing the finalizers of $r $ns/$name"
          k -n "$ns" patch "$r" "$name" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
          k -n "$ns" delete "$r" "$name" --wait=false >/dev/null 2>&1
        done
    done
  fi
  if [ -f "$OUT/spo/operator.yaml" ]; then
    k delete -f "$OUT/spo/operator.yaml" --ignore-not-found --wait=true --timeout=180s >/dev/null 2>&1
  fi
  k delete mutatingwebhookconfiguration spo-mutating-webhook-configuration --ignore-not-found >/dev/null 2>&1
  k delete validatingwebhookconfiguration spo-validating-webhook-configuration --ignore-not-found >/dev/null 2>&1
  k delete namespace "$SPO_NS" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1
  if [ -f "$OUT/spo/stub-crds" ]; then
    while read -r r; do k delete crd "$r" --ignore-not-found >/dev/null 2>&1; done <"$OUT/spo/stub-crds"
  fi
  # Files SPO's daemon and its init container left on the nodes.
  local node dir before entry
  for node in node1 node2; do
    dir=$KUBELET_ROOT/seccomp
    [ $node = node2 ] && dir=$NODE2_KUBELET_ROOT/seccomp
    before=$OUT/spo/$node-seccomp-before
    if [ ! -f "$before" ] || [ ! -d "$dir" ]; then continue; fi
    for entry in "$dir"/* "$dir"/.[!.]* "$dir"/..?*; do
      [ -e "$entry" ] || [ -L "$entry" ] || continue
      grep -qxF "${entry##*/}" "$before" || { log "removing $entry (left by SPO)"; rm -rf "$entry"; }
    done
  done
  if [ -f "$OUT/spo/cache" ] && [ ! -f "$OUT/spo/host-root-existed" ] && [ -e "$SPO_HOST_ROOT" ]; then
    rm -rf "$SPO_HOST_ROOT"
  fi
  if [ -f "$OUT/spo/cache" ]; then rm -rf "$NODE2_SPO_ROOT"; fi
  if [ -f "$OUT/spo/commit" ]; then
    "${CTR[@]}" images rm "$(spo_image)" >/dev/null 2>&1
    "${NODE2_CTR[@]}" images rm "$(spo_image)" >/dev/null 2>&1
  fi
  leftovers
}

# Anything of SPO still in the cluster; none is the expected answer.
leftovers() {
  local left=""
  k get namespace "$SPO_NS" >/dev/null 2>&1 && left+=" namespace/$SPO_NS"
  left+=$(k get crd -o name 2>/dev/null | grep -E "$SPO_GROUP|cert-manager.io" | tr '\n' ' ' | sed 's/^/ /')
  left+=$(k get mutatingwebhookconfiguration,validatingwebhookconfiguration -o name 2>/dev/null | grep spo- | tr '\n' ' ' | sed 's/^/ /')
  left+=$(k get clusterrole,clusterrolebinding -o name -l app=security-profiles-operator 2>/dev/null | tr '\n' ' ' | sed 's/^/ /')
  if [ -n "${left// /}" ]; then log "WARNING: SPO leftovers:$left"; return 1; fi
  log "no SPO objects, CRDs, namespaces or webhooks left"
}

# ---------------------------------------------------------------------------- node2
# node2 a Ready node again, should the workload have stopped while it was away (its new-node
# phase takes it down and brings it back).
ensure_node2() {
  if "$ROOT/hack/node2.sh" exec true 2>/dev/null &&
    k wait --for=condition=Ready node/node2 --timeout=10s >/dev/null 2>&1; then
    return 0
  fi
  log "node2 is not back: bringing it up again"
  "$ROOT/hack/node2.sh" down && "$ROOT/hack/node2.sh" network && "$ROOT/hack/node2.sh" up
}

# ---------------------------------------------------------------------------- main
CLEANED=0
cleanup() {
  [ $CLEANED = 1 ] && return
  CLEANED=1
  log "cleaning up: removing SPO, node2 back, restoring seccompd"
  remove_spo
  ensure_node2
  restore_seccompd
}

workload() { # SYSTEM
  # A new node2 needs the system's image (seccompd's is among the cluster's images).
  local images=""
  [ "$1" = spo ] && images="$(spo_cache)/image.tar"
  NODE2_EXTRA_IMAGES=$images "${WORKLOAD[@]}" measure --system "$1" --out "$OUT" "${NODE_ARGS[@]}" "${EXTRA_ARGS[@]}"
}

main() {
  [ "$(id -u)" = 0 ] || { log "bench-spo needs root (kubelet directories, /proc)"; exit 1; }
  if [ ! -f "$KUBECONFIG_FILE" ] || [ ! -f "$CLUSTER/etc/kubelet-node2.kubeconfig" ]; then
    log "no two-node cluster brought up by this checkout ($CLUSTER): make cluster-up first"
    exit 1
  fi
  export SECCOMPD_KUBECONFIG=$KUBECONFIG_FILE SECCOMPD_KUBECTL=$BIN/kubectl
  log "results in $OUT"
  seccompd_ready >/dev/null || { log "seccompd is not deployed and ready: make cluster-up first"; exit 1; }
  # Everything that can fail without touching the cluster comes first.
  cargo bench -q -p seccompd-e2e --bench vs_spo --no-run || exit 1
  local spo_ok=1
  step "build SPO from $(basename "$(spo_tarball)")" build_spo || spo_ok=0
  [ $spo_ok = 1 ] && { step "pack SPO's image and import it into node1 and node2" image_spo || spo_ok=0; }

  trap cleanup EXIT
  trap 'exit 130' INT TERM
  log "workload through seccompd"
  workload seccompd || log "the seccompd workload failed; its figures so far are kept"

  if [ $spo_ok = 1 ]; then
    step "pause seccompd (DaemonSet and controller)" pause_seccompd &&
      step "deploy SPO from deploy/operator.yaml (cert-manager replaced by stub CRDs and our certificates)" deploy_spo &&
      step "wait for SPO's operator Deployment" wait_operator &&
      step "wait for SPO's daemon (DaemonSet spod) on every node" wait_daemon &&
      step "wait for SPO's webhook and set its CA bundles" wait_webhook &&
      step "read SPO's daemon configuration" record_spod_config &&
      { log "workload through SPO"; workload spo || echo "workload through SPO" >>"$OUT/spo-failed-step"; }
  fi
  cleanup
  trap - EXIT INT TERM
  # The results file names what a person runs, not this report step.
  SECCOMPD_BENCH_COMMAND="make bench-spo${BENCH_SPO_ARGS:+ BENCH_SPO_ARGS=\"$BENCH_SPO_ARGS\"}" \
    "${WORKLOAD[@]}" report --out "$OUT"
}

# Sourcing the file (to run one step by hand) defines the functions only.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
