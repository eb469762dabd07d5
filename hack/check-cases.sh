#!/usr/bin/env bash
# Re-checks the runtime observations recorded in tests/validation/cases.json: runs every case
# that has a JSON input under runc and crun (hack/runtime-verdicts.sh) and compares whether the
# container ran ("runs") or not ("fails") with the recorded "runc" and "crun" fields.
# Cases with "nnp": false run with no_new_privs off, the others with it on.
# Prints one line per mismatch and exits 1 if there is any; `make check-cases` (part of
# `make test`) runs it. Needs root, runc, crun, jq and busybox-static (hack/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "$0: jq not found: run make deps" >&2; exit 1; }
# The table records runc 1.1.5 and crun 1.8.1 (Debian 12's); other versions may differ.
for rt in runc crun; do
  command -v "$rt" >/dev/null || { echo "$0: $rt not found: run make deps" >&2; exit 1; }
  "$rt" --version | head -1
done
cases=tests/validation/cases.json
work=$(mktemp -d /tmp/seccompd-cases.XXXXXX)
trap 'rm -rf "$work"' EXIT
n=$(jq length "$cases")
files=()
nnp_off=()
for ((i = 0; i < n; i++)); do
  name=$(jq -r ".[$i].name" "$cases")
  if [[ $(jq -r ".[$i].runc" "$cases") == n/a ]]; then continue; fi
  jq ".[$i].input" "$cases" >"$work/$name.json"
  if [[ $(jq -r ".[$i].nnp" "$cases") == false ]]; then
    nnp_off+=("$work/$name.json")
  else
    files+=("$work/$name.json")
  fi
done
hack/runtime-verdicts.sh "${files[@]}" >"$work/out.tsv"
if [[ ${#nnp_off[@]} -gt 0 ]]; then
  hack/runtime-verdicts.sh --nnp=false "${nnp_off[@]}" >>"$work/out.tsv"
fi
status=0
while IFS=$'\t' read -r file rt rc msg; do
  name=${file%.json}
  want=$(jq -r --arg n "$name" --arg rt "$rt" '.[] | select(.name == $n) | .[$rt]' "$cases")
  got=fails
  [[ $rc == rc=0 ]] && got=runs
  if [[ $want != "$got" ]]; then
    printf 'MISMATCH %s %s: recorded %s, observed %s %s\n' "$name" "$rt" "$want" "$got" "$msg"
    status=1
  fi
done <"$work/out.tsv"
echo "$(wc -l <"$work/out.tsv") runs compared"
exit $status
