#!/usr/bin/env bash
# Usage: hack/seccompd-image.sh OUT.tar
# Build seccompd for each platform in SECCOMPD_PLATFORMS (default linux/amd64,linux/arm64;
# the static executables come from hack/seccompd-bin.sh) and pack them as /seccompd and
# /seccompd-agent (what the DaemonSet runs) into one OCI archive named localhost/seccompd:dev,
# ready for `ctr images import`, which unpacks the node's own platform. No registry, no
# container engine.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
OUT=$1
PLATFORMS=${SECCOMPD_PLATFORMS:-linux/amd64,linux/arm64}
entries=()
for platform in ${PLATFORMS//,/ }; do
  [[ $platform == linux/* ]] || { echo "seccompd-image: $platform is not linux/ARCH" >&2; exit 2; }
  bin_dir=$("$ROOT/hack/seccompd-bin.sh" "${platform#linux/}")
  entries+=(--platform "$platform" "$bin_dir/seccompd=/seccompd"
    "$bin_dir/seccompd-agent=/seccompd-agent")
done
mkdir -p "$(dirname "$OUT")"
python3 "$ROOT/hack/mkoci.py" "$OUT" "$SECCOMPD_IMAGE" '["/seccompd"]' "${entries[@]}"
log "seccompd image $SECCOMPD_IMAGE ($PLATFORMS) written to $OUT"
