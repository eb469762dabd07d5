#!/usr/bin/env bash
# Build the Kubernetes components and etcd used by the test cluster from the Go module proxy.
# The pins live in tools/k8s and tools/etcd (our own go.mod files); binaries are cached under
# $SECCOMPD_CACHE (default ~/.cache/seccompd) by version and pin digest (hack/lib.sh), so a
# second run only checks that they are there.
#
#   hack/k8s-bins.sh               build what is missing: the pinned release, or the one
#                                  K8S_VERSION names (from a module generated in the cache)
#   hack/k8s-bins.sh --pin VERSION move the pin: regenerate tools/k8s/go.mod and go.sum
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

# must_be_release VERSION: exit unless VERSION names a release, before anything is made for it.
must_be_release() {
  [[ $1 =~ ^v1\.[0-9]+\.[0-9]+$ ]] || { echo "k8s-bins: $1 is not a release v1.Y.Z" >&2; exit 1; }
}

# k8s_module DIR VERSION: make DIR/go.mod and go.sum require k8s.io/kubernetes VERSION with
# every staging module (k8s.io/api, ...) replaced by its published tag v0.Y.Z. Kubernetes'
# own go.mod replaces them with ./staging paths, which hold only inside its repository; the
# list is taken from the go.mod the proxy serves for VERSION, since it changes between
# releases. DIR/tools.go imports the commands.
k8s_module() {
  local dir=$1 version=$2 gomod staging m
  local mods=() packages=()
  must_be_release "$version"
  cd "$dir"
  rm -f go.mod go.sum
  go mod init seccompd.dev/tools/k8s 2>/dev/null
  gomod=$(go mod download -json "k8s.io/kubernetes@$version" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  mapfile -t mods < <(sed -n 's#^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\2#p' "$gomod")
  [ ${#mods[@]} -gt 0 ] || { echo "k8s-bins: no staging replaces in $gomod" >&2; exit 1; }
  staging=v0.${version#v1.}
  for m in "${mods[@]}"; do go mod edit -replace="$m=$m@$staging"; done
  for m in "${CMDS[@]}"; do packages+=("k8s.io/kubernetes/cmd/$m@$version"); done
  echo "k8s-bins: resolving $version (${#mods[@]} staging modules at $staging)"
  go get "${packages[@]}"
  cd - >/dev/null
}

if [ "${1:-}" = --pin ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 --pin vX.Y.Z" >&2; exit 2; }
  k8s_module "$ROOT/tools/k8s" "$2"
  echo "k8s-bins: tools/k8s now pins $2"
  exit 0
fi

k8s_version_to_build
[ -n "$K8S_VERSION" ] || { echo "k8s-bins: no k8s.io/kubernetes pin in tools/k8s/go.mod" >&2; exit 1; }
must_be_release "$K8S_VERSION"
OUT=$BIN
missing=()
for c in "${CMDS[@]}" etcd; do [ -x "$OUT/$c" ] || missing+=("$c"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "k8s-bins: $K8S_VERSION and etcd cached in $OUT"
  exit 0
fi

if [ "$K8S_VERSION" = "$K8S_PIN" ]; then
  MODULE=$ROOT/tools/k8s
else
  # Kept beside the binaries it built: a second build of this version reuses it.
  MODULE=$OUT.module
  if [ "$(k8s_required "$MODULE/go.mod")" != "$K8S_VERSION" ]; then
    mkdir -p "$MODULE"
    cp "$ROOT/tools/k8s/tools.go" "$MODULE/"
    k8s_module "$MODULE" "$K8S_VERSION"
  fi
fi

minor=$(echo "$K8S_VERSION" | cut -d. -f2)
# Without these the binaries report v0.0.0-master (as upstream's hack/lib/version.sh sets them).
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
# Built into a scratch directory and moved in place at the end, so an interrupted build is
# never taken for a cached one.
mkdir -p "$CACHE/k8s"
tmp=$(mktemp -d "$CACHE/k8s/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$MODULE"
echo "k8s-bins: building ${CMDS[*]} $K8S_VERSION into $OUT (cold build: about 15 minutes)"
go build -trimpath -ldflags "$ld" -o "$tmp/" "${CMDS[@]/#/k8s.io/kubernetes/cmd/}"
cd "$ROOT/tools/etcd"
echo "k8s-bins: building etcd"
go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" .
mkdir -p "$OUT"
for c in "${CMDS[@]}" etcd; do mv "$tmp/$c" "$OUT/$c"; done
"$OUT/kubelet" --version
# sed, not head: head exits after one line and etcd, still writing, dies of SIGPIPE (pipefail)
"$OUT/etcd" --version | sed -n 1p
