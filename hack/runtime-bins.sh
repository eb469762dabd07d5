#!/usr/bin/env bash
# Build node1's container runtime from the Go module proxy: containerd (with its runc shim
# and ctr) and runc, at the versions hack/lib.sh pins, cached under $SECCOMPD_CACHE (default
# ~/.cache/seccompd) by version, so a second run only checks that they are there. node2 keeps
# Debian's containerd and runc (hack/deps.sh installs them).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CONTAINERD_CMDS=(containerd containerd-shim-runc-v2 ctr)
export GOTOOLCHAIN=local

# build NAME OUT BINARIES -- GO_INSTALL_ARGS...: go install into a scratch directory, then move
# BINARIES to OUT, so an interrupted build is never taken for a cached one.
build() {
  local name=$1 out=$2 tmp b
  shift 2
  local bins=()
  while [ "$1" != -- ]; do bins+=("$1"); shift; done
  shift
  local missing=0
  for b in "${bins[@]}"; do [ -x "$out/$b" ] || missing=1; done
  if [ $missing = 0 ]; then
    echo "runtime-bins: $name cached in $out"
    return 0
  fi
  mkdir -p "$CACHE"
  tmp=$(mktemp -d "$CACHE/runtime-build.XXXXXX")
  echo "runtime-bins: building $name into $out (cold build: a minute or two)"
  if ! GOBIN=$tmp go install -trimpath "$@"; then rm -rf "$tmp"; return 1; fi
  mkdir -p "$out"
  for b in "${bins[@]}"; do mv "$tmp/$b" "$out/$b"; done
  rm -rf "$tmp"
  built=1
}
built=0

command -v go >/dev/null || { echo "runtime-bins: Go toolchain not found" >&2; exit 1; }
# runc's seccomp support links Debian's libseccomp (cgo).
CGO_ENABLED=1 build "runc $RUNC_VERSION" "$RUNC_BIN" runc -- -tags seccomp \
  "github.com/opencontainers/runc@$RUNC_VERSION"
# No btrfs headers here; the btrfs snapshotter is not used. The version is stamped as
# containerd's own Makefile does (else it reports 2.x+unknown, to the kubelet too).
packages=()
for c in "${CONTAINERD_CMDS[@]}"; do
  packages+=("github.com/containerd/containerd/v2/cmd/$c@$CONTAINERD_VERSION")
done
CGO_ENABLED=1 build "containerd $CONTAINERD_VERSION" "$CONTAINERD_BIN" "${CONTAINERD_CMDS[@]}" -- \
  -tags no_btrfs -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
  "${packages[@]}"
if [ "$built" = 1 ]; then
  "$RUNC_BIN/runc" --version | sed -n 1p
  "$CONTAINERD_BIN/containerd" --version
fi
