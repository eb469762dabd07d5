#!/usr/bin/env bash
# Usage: hack/seccompd-bin.sh ARCH     (ARCH: amd64 or arm64, the OCI/Debian names)
# Build seccompd's two executables, seccompd (controller, recorder, the commands for users) and
# seccompd-agent (the node agent), for linux/ARCH, fully static (libseccomp linked in, static
# glibc PIE: the musl target cannot be installed here), and print the directory holding both.
# Another ARCH than this machine's is cross-built with Debian's cross toolchain and libseccomp
# for that ARCH (hack/deps.sh installs both). The image script and the Dockerfile both build
# through here.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCH=${1:?usage: hack/seccompd-bin.sh amd64|arm64}
case $ARCH in
  amd64) RUST_TARGET=x86_64-unknown-linux-gnu GNU=x86_64-linux-gnu ;;
  arm64) RUST_TARGET=aarch64-unknown-linux-gnu GNU=aarch64-linux-gnu ;;
  *) echo "seccompd-bin: unknown ARCH $ARCH (amd64 or arm64)" >&2; exit 2 ;;
esac
rustup target list --installed | grep -qx "$RUST_TARGET" || rustup target add "$RUST_TARGET" >&2

build_env=(LIBSECCOMP_LINK_TYPE=static "LIBSECCOMP_LIB_PATH=/usr/lib/$GNU"
  "RUSTFLAGS=-C target-feature=+crt-static")
if [ "$ARCH" != "$(dpkg --print-architecture)" ]; then
  # Cross: link with the cross gcc, and compile the C in dependencies (ring) with it too.
  triple_var=${RUST_TARGET//-/_}
  build_env+=("CARGO_TARGET_${triple_var^^}_LINKER=$GNU-gcc" "CC_$triple_var=$GNU-gcc"
    "AR_$triple_var=$GNU-ar")
fi
cd "$ROOT"
# The explicit --target keeps build scripts and proc-macros dynamic; only the executables are
# static.
env "${build_env[@]}" cargo build --release --locked --target "$RUST_TARGET" \
  --bin seccompd --bin seccompd-agent >&2
echo "${CARGO_TARGET_DIR:-$ROOT/target}/$RUST_TARGET/release"
