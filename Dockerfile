# Charon: Redis with the charon rate-limiting module loaded.
#
#   docker build -t charon .
#   docker run --rm -p 6379:6379 -v charon-data:/data charon
#
# Every base image is pinned by digest, and the Redis source tarball by sha256
# (REDIS_VERSION / REDIS_SHA256 below, the only place they are written).
# tests/dockerfile_pins.rs checks these pins; scripts/lint-dockerfile lints.

ARG REDIS_VERSION=7.2.15
ARG REDIS_SHA256=7bf7975331511fdb788e85dae63964b128fccee1df026a10db57444babc9c9c4

# ---- the module -----------------------------------------------------------
FROM rust:1.95.0-bookworm@sha256:84696f49efb05ce30737a421bf5637fb0d553799aef0169fa3657a68210344b0 AS module

# bindgen (through redis-module) needs libclang.
# The base image is pinned by digest, so its apt sources are fixed too.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# build.r[s]: build.rs if the crate has one; a wildcard may match nothing.
COPY Cargo.toml Cargo.lock build.r[s] ./
COPY src ./src
RUN cargo build --release --locked

# ---- Redis, from the checksummed release tarball --------------------------
FROM debian:bookworm-20260918-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251 AS redis
ARG REDIS_VERSION
ARG REDIS_SHA256
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Build tools only; this stage is thrown away. The base is pinned by digest.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gcc libc6-dev make pkg-config \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /build
RUN curl -fsSL -o redis.tar.gz "https://download.redis.io/releases/redis-${REDIS_VERSION}.tar.gz" \
 && echo "${REDIS_SHA256}  redis.tar.gz" | sha256sum -c - \
 && tar -xzf redis.tar.gz --strip-components=1 \
 && make -j"$(nproc)" BUILD_TLS=no \
 && make install PREFIX=/usr/local \
 && redis-server --version \
 && redis-server --version | grep -qF "v=${REDIS_VERSION} "

# ---- runtime --------------------------------------------------------------
FROM debian:bookworm-20260918-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251

RUN groupadd --system --gid 999 redis \
 && useradd --system --uid 999 --gid redis --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin redis \
 && mkdir -p /data /etc/charon \
 && chown redis:redis /data

COPY --from=redis /usr/local/bin/redis-server /usr/local/bin/redis-cli /usr/local/bin/
COPY --from=module /src/target/release/libcharon.so /usr/local/lib/charon/libcharon.so
COPY docker/redis.conf /etc/charon/redis.conf

VOLUME /data
WORKDIR /data
EXPOSE 6379

# Healthy only while the module is loaded: MODULE LIST names it on a line.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["sh", "-c", "redis-cli -p 6379 MODULE LIST | grep -qx charon"]

# The redis user created above, by number so that a runtime can tell it is not root.
USER 999:999
CMD ["redis-server", "/etc/charon/redis.conf"]
