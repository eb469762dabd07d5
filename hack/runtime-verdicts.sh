#!/usr/bin/env bash
# Runs a container under each seccomp profile given, with runc and with crun, and prints one
# line per profile and runtime: whether the container started and exited 0, or the runtime's
# error. This is how the expectations in tests/validation/cases.json were checked.
#
#   hack/runtime-verdicts.sh [--nnp=false] [--cmd 'true'] PROFILE.json...
#
# Needs root, runc, crun and busybox-static (apt-get install runc crun busybox-static).
# The profile file is put into the OCI config as linux.seccomp, so it must be plain OCI
# format: moby fields make both runtimes fail to parse the config (as CRI would not).
set -euo pipefail

nnp=true
cmd=true
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nnp=*) nnp="${1#--nnp=}"; shift ;;
    --cmd) cmd="$2"; shift 2 ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--nnp=false] [--cmd CMD] PROFILE.json..." >&2; exit 2; }
# A missing runtime would read as a container that failed: refuse to run without both.
for tool in runc crun jq unshare; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found: run make deps (hack/deps.sh installs it)" >&2; exit 1; }
done
[[ -x /bin/busybox ]] || { echo "$0: no /bin/busybox: run make deps (busybox-static)" >&2; exit 1; }

work=$(mktemp -d /tmp/seccompd-verdicts.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/dev" "$work/bundle/rootfs/proc" \
  "$work/bundle/rootfs/tmp" "$work/bundle/rootfs/sys"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for app in sh true ls mkdir cat; do ln -s busybox "$work/bundle/rootfs/bin/$app"; done
(cd "$work/bundle" && runc spec && mv config.json ../config.orig.json)

n=0
for profile in "$@"; do
  for rt in runc crun; do
    n=$((n + 1))
    id="seccompd-verdict-$$-$n"
    jq --slurpfile sec "$profile" --arg cmd "$cmd" --argjson nnp "$nnp" '
      .process.terminal = false
      | .process.args = ["/bin/sh", "-c", $cmd]
      | .process.noNewPrivileges = $nnp
      | .root.readonly = false
      | .linux.seccomp = $sec[0]' "$work/config.orig.json" >"$work/bundle/config.json"
    set +e
    if [[ $rt == crun ]]; then
      # crun 1.8 refuses cgroup v1 "hybrid" hosts (a cgroup2 mount beside v1): hide that mount
      # in a private mount namespace and run without cgroups; seccomp handling is unaffected.
      # shellcheck disable=SC2016 # $1 is expanded by the inner sh, not here.
      out=$(cd "$work/bundle" && timeout 120 unshare -m sh -c \
        'umount -l /sys/fs/cgroup/unified 2>/dev/null; exec crun --cgroup-manager=disabled run "$1" </dev/null' \
        sh "$id" 2>&1)
    else
      out=$(cd "$work/bundle" && timeout 120 runc run "$id" </dev/null 2>&1)
    fi
    rc=$?
    set -e
    "$rt" delete -f "$id" >/dev/null 2>&1 || true
    msg=$(printf '%s' "$out" | tr '\n' ' ' | sed -e 's/  */ /g' | cut -c1-220)
    printf '%s\t%s\trc=%s\t%s\n' "$(basename "$profile")" "$rt" "$rc" "$msg"
  done
done
