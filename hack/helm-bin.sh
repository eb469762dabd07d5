#!/usr/bin/env bash
# Build Helm from its Go module (the Go module proxy, like hack/k8s-bins.sh) and cache it
# under $SECCOMPD_CACHE (default ~/.cache/seccompd) by version, so a second run only checks
# that it is there. `--print` prints the binary's path without building (the chart tests
# and hack/gen-manifests.sh find Helm this way).
#
# The pin lives here, not in tools/: every file under tools/ is part of the Kubernetes
# binaries' cache key (hack/lib.sh), and a Helm bump must not rebuild Kubernetes.
set -euo pipefail
HELM_VERSION=v3.22.0
OUT=${SECCOMPD_CACHE:-$HOME/.cache/seccompd}/helm/$HELM_VERSION

if [ "${1:-}" = "--print" ]; then
  echo "$OUT/helm"
  exit 0
fi
if [ -x "$OUT/helm" ]; then
  echo "helm-bin: $HELM_VERSION cached in $OUT"
  exit 0
fi
command -v go >/dev/null || { echo "helm-bin: Go toolchain not found (needed to build Helm)" >&2; exit 1; }
mkdir -p "$OUT"
echo "helm-bin: building helm $HELM_VERSION into $OUT (cold build: a few minutes)"
# Helm's own Makefile stamps the version the same way; without it `helm version` says v3.x-dev.
GOBIN=$OUT GOTOOLCHAIN=local CGO_ENABLED=0 go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
"$OUT/helm" version --short
