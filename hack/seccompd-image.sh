#!/usr/bin/env bash
# Usage: hack/seccompd-image.sh OUT.tar
# Build seccompd as a fully static binary (libseccomp linked in, static glibc PIE: the
# musl target cannot be installed here) and pack it as /seccompd into an OCI archive named
# localhost/seccompd:dev, ready for `ctr images import`. No registry, no container engine.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
OUT=$1
TARGET=x86_64-unknown-linux-gnu
cd "$ROOT"
# The explicit --target keeps build scripts and proc-macros dynamic; only seccompd is static.
LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu \
  RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --release --target "$TARGET" --bin seccompd
mkdir -p "$(dirname "$OUT")"
python3 "$ROOT/hack/mkoci.py" "$OUT" "$SECCOMPD_IMAGE" '["/seccompd"]' \
  "target/$TARGET/release/seccompd=/seccompd"
log "seccompd image $SECCOMPD_IMAGE written to $OUT"
