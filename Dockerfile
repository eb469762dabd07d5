# seccompd: two static executables (seccompd, and seccompd-agent for the DaemonSet) in an
# otherwise empty image, for linux/amd64 and linux/arm64.
# Build: docker buildx build --platform linux/amd64,linux/arm64 -t seccompd:dev .
#        (one platform: docker build -t seccompd:dev .; without Docker: see README,
#        "Building the image")

# The build stage runs on the builder's own platform and cross-compiles for the target's,
# with Debian's cross toolchain and the target's libseccomp (as hack/deps.sh installs them).
FROM --platform=$BUILDPLATFORM docker.io/library/rust:1.95-bookworm AS build
ARG TARGETARCH
RUN set -eu; \
    case "$TARGETARCH" in amd64) gcc=gcc-x86-64-linux-gnu ;; arm64) gcc=gcc-aarch64-linux-gnu ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; esac; \
    pkgs="libseccomp-dev:$TARGETARCH"; \
    if [ "$TARGETARCH" != "$(dpkg --print-architecture)" ]; then \
      dpkg --add-architecture "$TARGETARCH"; pkgs="$pkgs $gcc libc6-dev-$TARGETARCH-cross"; \
    fi; \
    apt-get update && apt-get install -y --no-install-recommends $pkgs \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY crds ./crds
COPY hack/seccompd-bin.sh ./hack/
# libseccomp and glibc linked in statically (static PIE); TLS is rustls, so no OpenSSL.
RUN bin=$(hack/seccompd-bin.sh "$TARGETARCH") && mkdir /out \
    && cp "$bin/seccompd" "$bin/seccompd-agent" /out/

FROM scratch
COPY --from=build /out/seccompd /out/seccompd-agent /
ENTRYPOINT ["/seccompd"]
