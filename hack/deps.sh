#!/usr/bin/env bash
# Install what `make test` needs on a fresh machine of this kind, idempotently: Debian
# packages (only when missing, so a warm machine does not touch apt), the Kubernetes
# binaries (hack/k8s-bins.sh), node1's containerd and runc (hack/runtime-bins.sh), Prometheus
# for the scrape test (hack/prometheus-bin.sh) and Helm for the chart tests and `make lint`'s
# check of manifests/ (hack/helm-bin.sh), all cached by version outside the repo.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKGS=(containerd runc containernetworking-plugins iptables iproute2 conntrack openssl curl
  gcc libc6-dev python3 busybox-static libseccomp-dev pkg-config util-linux procps findutils
  # `make check-cases` runs the validation table's profiles under both runtimes.
  crun jq
  # `make lint` checks the scripts in hack/.
  shellcheck
  # The arm64 build (hack/seccompd-bin.sh arm64) and its check under qemu (hack/arm64-check.sh).
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross libseccomp-dev:arm64 qemu-user-static)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  # Packages named :arm64 come from the arm64 architecture, which dpkg must know first.
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian containerd package may start a system containerd where systemd runs; the
# cluster uses its own instance and socket, so that one is simply left alone.
command -v go >/dev/null || { echo "deps: Go toolchain not found (needed to build Kubernetes, containerd, runc, Prometheus and Helm)" >&2; exit 1; }
"$ROOT/hack/k8s-bins.sh"
"$ROOT/hack/runtime-bins.sh"
"$ROOT/hack/prometheus-bin.sh"
"$ROOT/hack/helm-bin.sh"
