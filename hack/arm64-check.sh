#!/usr/bin/env bash
# The linux/arm64 build works: cross-build seccompd for arm64 (hack/seccompd-bin.sh) and run
# it under qemu-user on the seed's profiles (../shared/profiles, beside the repository).
# `seccompd validate` and `seccompd import` must answer exactly as this machine's own build
# does for --arch aarch64, both with --arch aarch64 and with the architecture the arm64
# binary detects itself (which must therefore be aarch64: import's output names the
# architecture, and differs for x86_64).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
QEMU=qemu-aarch64-static
PROFILES=$ROOT/../shared/profiles
fail() { echo "arm64-check: $*" >&2; exit 1; }

command -v "$QEMU" >/dev/null || fail "$QEMU not found: run make deps"
profiles=("$PROFILES"/*.json)
[ -e "${profiles[0]}" ] || fail "no profiles in $PROFILES"
start=$SECONDS
arm64_dir=$("$ROOT/hack/seccompd-bin.sh" arm64)
arm64=$arm64_dir/seccompd
native=$("$ROOT/hack/seccompd-bin.sh" "$(dpkg --print-architecture)")/seccompd
echo "arm64-check: built $arm64 and $native in $((SECONDS - start)) s"
# aarch64 executables without a program interpreter: static, so they run on any arm64 node.
for exe in "$arm64" "$arm64_dir/seccompd-agent"; do
  readelf -h "$exe" | grep -q 'Machine: *AArch64' || fail "$exe is not an AArch64 binary"
  ! readelf -l "$exe" | grep -q 'INTERP' || fail "$exe is dynamically linked"
done

# All a run says (stdout, stderr) and its exit code.
answer() { local rc=0 out; out=$("$@" 2>&1) || rc=$?; printf '%s\nexit code %s\n' "$out" "$rc"; }
# The same answer from the native build (--arch aarch64), the arm64 one under qemu with
# --arch aarch64, and the arm64 one detecting its own architecture.
same_answers() {
  local want got
  want=$(answer "$native" "$@" --arch aarch64)
  got=$(answer "$QEMU" "$arm64" "$@" --arch aarch64)
  [ "$got" = "$want" ] || fail "seccompd $* --arch aarch64 under qemu:"$'\n'"$got"$'\n'"native build:"$'\n'"$want"
  got=$(answer "$QEMU" "$arm64" "$@")
  [ "$got" = "$want" ] || fail "seccompd $* (detected arch) under qemu:"$'\n'"$got"$'\n'"native build, --arch aarch64:"$'\n'"$want"
  echo "$want"
}

same_answers validate "${profiles[@]}"
import=$(mktemp --suffix=.yaml)
trap 'rm -f "$import"' EXIT
for p in "${profiles[@]}"; do
  imported=$(same_answers import "$p" --name arm64-check)
  [ "$imported" != "$(answer "$native" import "$p" --name arm64-check --arch x86_64)" ] &&
    arch_shows=1
  # The import is valid on the arm64 node it was made for.
  "$QEMU" "$arm64" import "$p" --name arm64-check 2>/dev/null >"$import"
  "$QEMU" "$arm64" validate "$import" >/dev/null ||
    fail "the arm64 import of $p is not valid for arm64"
done
[ -n "${arch_shows:-}" ] ||
  fail "no import differs between aarch64 and x86_64: the detected-architecture check proves nothing"
echo "arm64-check: validate and import of ${#profiles[@]} profiles under qemu-aarch64 answer as the native build for aarch64 ($((SECONDS - start)) s)"
