#!/usr/bin/env bash
# Build Prometheus (and promtool) from its Go module for the scrape test, cached under
# $SECCOMPD_CACHE (default ~/.cache/seccompd) by version, so a second run only checks that
# they are there. `--path` prints where the prometheus binary is (built or not) and exits:
# tests/cluster/prometheus_scrape.rs asks it, so the version is pinned here only.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# The Go module's version of Prometheus 3.x (v0.3XX.Y is release 3.XX.Y).
PROMETHEUS_VERSION=v0.316.0
OUT=$CACHE/prometheus/$PROMETHEUS_VERSION
CMDS=(prometheus promtool)

if [ "${1:-}" = --path ]; then
  echo "$OUT/prometheus"
  exit 0
fi
missing=()
for c in "${CMDS[@]}"; do [ -x "$OUT/$c" ] || missing+=("$c"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "prometheus-bin: $PROMETHEUS_VERSION cached in $OUT"
  exit 0
fi
export GOTOOLCHAIN=local CGO_ENABLED=0
# Built into a scratch directory and moved in place at the end, so an interrupted build is
# never taken for a cached one.
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/prometheus-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "prometheus-bin: building ${CMDS[*]} $PROMETHEUS_VERSION into $OUT (cold build: about 7 minutes)"
# The version Prometheus reports (`--version`, build_info) is set by its release tooling;
# a plain `go install` leaves it empty, so it is the module's version here.
PACKAGES=()
for c in "${CMDS[@]}"; do PACKAGES+=("github.com/prometheus/prometheus/cmd/$c@$PROMETHEUS_VERSION"); done
GOBIN=$tmp go install -trimpath \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
  "${PACKAGES[@]}"
mkdir -p "$OUT"
for c in "${CMDS[@]}"; do mv "$tmp/$c" "$OUT/$c"; done
"$OUT/prometheus" --version | head -n1
