#!/usr/bin/env bash
# Build the Kubernetes components and etcd used by the test cluster from the Go module proxy.
# Pins live in tools/k8s and tools/etcd (our own go.mod files); binaries are cached under
# $SECCOMPD_CACHE (default ~/.cache/seccompd) by version and pin digest (hack/lib.sh), so a
# second run only checks that they are there.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ -n "$K8S_VERSION" ] || { echo "k8s-bins: no k8s.io/kubernetes pin in tools/k8s/go.mod" >&2; exit 1; }
OUT=$BIN
CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

have() { [ -x "$OUT/$1" ]; }
missing=()
for c in "${CMDS[@]}" etcd; do have "$c" || missing+=("$c"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "k8s-bins: $K8S_VERSION and etcd cached in $OUT"
  exit 0
fi
mkdir -p "$OUT"
minor=$(echo "$K8S_VERSION" | cut -d. -f2)
# Without these the binaries report v0.0.0-master (as upstream's hack/lib/version.sh sets them).
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
cd "$ROOT/tools/k8s"
echo "k8s-bins: building ${CMDS[*]} $K8S_VERSION into $OUT (cold build: tens of minutes)"
go build -trimpath -ldflags "$ld" -o "$OUT/" "${CMDS[@]/#/k8s.io/kubernetes/cmd/}"
cd "$ROOT/tools/etcd"
echo "k8s-bins: building etcd"
go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" .
"$OUT/kubelet" --version
"$OUT/etcd" --version | head -n1
