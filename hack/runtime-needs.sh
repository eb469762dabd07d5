#!/usr/bin/env bash
# Finds which system calls runc and crun need after loading a seccomp filter: starts from the
# "allowlist-complete" profile of tests/validation/cases.json (which runs under both), removes
# one name at a time and runs a container with no_new_privs on and off
# (hack/runtime-verdicts.sh). Prints the runs that failed, with the runtime's message.
# Names whose removal breaks both runtimes alike (arch_prctl, brk, exit_group, mprotect) are
# busybox's own needs, not the runtimes'. Needs root, runc, crun, busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/seccompd-needs.XXXXXX)
trap 'rm -rf "$work"' EXIT
names=$(jq -r '.[] | select(.name == "allowlist-complete") | .input.syscalls[0].names[]' \
  tests/validation/cases.json)
for n in $names; do
  [[ $n == execve ]] && continue
  jq --arg n "$n" '.[] | select(.name == "allowlist-complete") | .input
    | .syscalls[0].names |= map(select(. != $n))' tests/validation/cases.json >"$work/no-$n.json"
done
for nnp in true false; do
  echo "== no_new_privs=$nnp"
  hack/runtime-verdicts.sh --nnp=$nnp "$work"/no-*.json | awk -F'\t' '$3 != "rc=0"'
done
