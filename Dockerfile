# syntax=docker/dockerfile:1
# The Threds image: the `threds` binary and the default configuration, run as an unprivileged
# user. Every role is a subcommand (`threds engine|session|persistence`); the Helm chart
# (deploy/helm/threds) runs it with a read-only root filesystem and a writable /tmp only.
#
#   docker build -t threds:0.1.0 .
#   docker run --rm -p 8080:8080 threds:0.1.0 dev

# The workspace's rust-version (Cargo.toml) or newer.
ARG RUST_VERSION=1.90

FROM rust:${RUST_VERSION}-bookworm AS builder
# librdkafka is built from source and linked statically, with TLS and zlib compression from the
# system (the `ssl` and `libz` features; SASL PLAIN and SCRAM need nothing more). Debian's package
# versions move with its point releases, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p threds-actors --bin threds \
 && install -D -m 0755 target/release/threds /out/threds

FROM debian:bookworm-slim AS runtime
# What the binary links besides the C library: OpenSSL 3 and zlib (tests/deploy/test_image.py
# checks this against the release binary).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 threds \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin threds
COPY --from=builder /out/threds /usr/local/bin/threds
# The default threds.toml, sessions model, resolver config and example patterns, found by the
# default `--config config/threds.toml` from this working directory.
COPY config/ /usr/share/threds/config/
WORKDIR /usr/share/threds
# Inside a container the process listens on every interface (the default is 127.0.0.1).
ENV THREDS_SERVER_LISTEN=0.0.0.0:8080
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/threds"]
CMD ["--help"]
