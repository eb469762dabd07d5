# seccompd: one static binary in an otherwise empty image.
# Build: docker build -t seccompd:dev .   (without Docker: see README, "Building the image")

FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libseccomp-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY crds ./crds
# libseccomp is linked in statically and glibc too (static PIE); TLS is rustls, so no
# OpenSSL. The explicit --target keeps build scripts and proc-macros dynamic.
RUN LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu \
    RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin seccompd

FROM scratch
COPY --from=build /src/target/x86_64-unknown-linux-gnu/release/seccompd /seccompd
ENTRYPOINT ["/seccompd"]
