#!/usr/bin/env bash
# Usage: hack/demo-image.sh OUT.tar
# Pack this machine's Debian bookworm `ls` (coreutils, with the shared libraries it loads)
# and busybox (for sh) into an OCI archive named docker.io/library/debian:bookworm-slim:
# the image manifests/examples/ use. On a real cluster that name pulls Debian's image, whose
# /usr/bin/ls is this same binary; the test cluster has no registry, so cluster-up imports
# this stand-in under that name before any pod starts and `imagePullPolicy: IfNotPresent`
# never pulls.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
OUT=$1
entries=("/usr/bin/ls=/usr/bin/ls" "/bin/busybox=/bin/busybox" "link:/bin/sh=busybox"
  "link:/bin/ls=../usr/bin/ls" "link:/bin/mkdir=busybox" "link:/bin/cat=busybox")
for lib in $(ldd /usr/bin/ls | grep -o '/[^ ]*'); do
  entries+=("$(readlink -f "$lib")=$lib")
done
mkdir -p "$(dirname "$OUT")"
python3 "$ROOT/hack/mkoci.py" "$OUT" "$DEMO_IMAGE" '["/bin/sh"]' "${entries[@]}"
log "demo image $DEMO_IMAGE written to $OUT"
