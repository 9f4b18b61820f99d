# syntax=docker/dockerfile:1
# randomize: multi-stage build. Dependencies are cooked in their own layer (cargo-chef),
# so a source change rebuilds only our crate. Runtime: Debian slim, non-root, no shell
# tools beyond /bin/sh (the entrypoint) — the HEALTHCHECK is the binary itself.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
# libpq is compiled from source (pq-sys "bundled") against the system OpenSSL.
# DL3008: Debian drops superseded package versions from its mirrors, so pinned versions
# break the build at the next security update; the base image tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/* \
    && cargo install --locked cargo-chef --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin randomize

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/example/randomize
LABEL org.opencontainers.image.title="randomize" \
      org.opencontainers.image.description="Word-randomizer REST service with an audit history" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT"
# libssl3 + CA roots: TLS to a managed PostgreSQL (sslmode=verify-full). DL3008: as above.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 randomize \
    && useradd --system --uid 10001 --gid randomize --home-dir /var/opt/myapp --shell /usr/sbin/nologin randomize \
    && mkdir -p /var/opt/myapp/instance \
    && chown -R randomize:randomize /var/opt/myapp
COPY --from=builder /src/target/release/randomize /usr/local/bin/randomize
COPY --chmod=0755 entrypoint.sh /entrypoint.sh

ENV BIND=0.0.0.0:5000 \
    DATABASE_URL=sqlite:///var/opt/myapp/instance/randomize.sqlite3 \
    LOG_FORMAT=json \
    LOG_LEVEL=info
WORKDIR /var/opt/myapp
VOLUME ["/var/opt/myapp/instance"]
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["randomize", "healthcheck"]
ENTRYPOINT ["/entrypoint.sh"]
