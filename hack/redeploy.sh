#!/usr/bin/env bash
# Development: rebuild the seccompd image from this checkout (this machine's platform only,
# unless SECCOMPD_PLATFORMS says otherwise), import it on the running cluster's nodes and
# restart seccompd's pods, without bringing the cluster down.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SECCOMPD_PLATFORMS=${SECCOMPD_PLATFORMS:-linux/$(go env GOARCH)} \
  "$ROOT/hack/seccompd-image.sh" "$CLUSTER/images/seccompd.tar"
"${CTR[@]}" images import "$CLUSTER/images/seccompd.tar" >/dev/null
if [ -S "$NODE2_CONTAINERD_SOCK" ]; then
  "${NODE2_CTR[@]}" images import "$CLUSTER/images/seccompd.tar" >/dev/null
fi
KUBECTL=("$BIN/kubectl" --kubeconfig "$CLUSTER/kubeconfig")
"${KUBECTL[@]}" -n seccompd-system rollout restart daemonset/seccompd-agent deployment/seccompd-controller
"${KUBECTL[@]}" -n seccompd-system rollout status ds/seccompd-agent --timeout=180s
"${KUBECTL[@]}" -n seccompd-system rollout status deployment/seccompd-controller --timeout=180s
log "redeployed $SECCOMPD_IMAGE"
