# syntax=docker/dockerfile:1.7
# Multi-stage build: a release binary built with the locked dependencies, in a slim runtime
# image that runs as a non-root user and keeps its SQLite file in a volume.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin clientele \
    && cp target/release/clientele /usr/local/bin/clientele

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin clientele \
    && mkdir -p /data \
    && chown clientele:clientele /data
COPY --from=build /usr/local/bin/clientele /usr/local/bin/clientele

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
ENV CLIENTELE_LISTEN=0.0.0.0:50051 \
    CLIENTELE_METRICS_LISTEN=0.0.0.0:9090 \
    DATABASE_URL=sqlite:///data/clientele.db?mode=rwc \
    CLIENTELE_LOG_FORMAT=json
# gRPC; metrics and readiness (/metrics, /ready, /live).
EXPOSE 50051 9090
# `clientele health` checks the CLIENTELE_LISTEN address, with 0.0.0.0 read as loopback.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["clientele", "health"]
ENTRYPOINT ["clientele"]
CMD ["serve"]
