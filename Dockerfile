# syntax=docker/dockerfile:1
#
# insight-bot's container image: a release build on the official Rust image, copied onto a slim
# Debian of the same release (bookworm both sides, so the binary's glibc matches).
#
#   docker build -t insight-bot .
#   docker compose up -d            # the bot with PostgreSQL: see compose.yaml and docs/operations.md
#
# The embedding model, the shipped collection, the migrations and the fonts are compiled into the
# binary (include_bytes!), so the runtime stage holds one file of ours and nothing to download.
#
# Not built or run on the machine this was written on: no registry of base images was reachable
# there (see docs/operations.md). tests/deployment_files.rs checks the variables named below.

# ---- build ----
# The crate needs Rust 1.89 (Cargo.toml's rust-version).
FROM rust:1.89-bookworm AS build
WORKDIR /src
# tests/ and benches/ come along (less their data, see .dockerignore): Cargo.toml declares test
# and bench targets by name, and cargo refuses a manifest whose declared targets have no file.
COPY . .
# --locked: exactly the dependency versions of Cargo.lock, or fail. The cache mounts keep the
# registry and the target folder between builds (BuildKit or buildah); the binary is copied out
# of the cached target folder because a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin insight-bot \
    && cp target/release/insight-bot /usr/local/bin/insight-bot

# ---- runtime ----
FROM debian:bookworm-slim
# The binary's HTTP and gateway clients carry their own root certificates (webpki-roots);
# ca-certificates is for anything else in the image that speaks TLS through the system's store.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed, non-root uid, so that operators can give it the secret files
# (chown 10001 secrets/discord_token) and Kubernetes' runAsNonRoot can check it.
# (Not --system: system accounts are expected below uid 1000, and useradd warns about 10001.)
RUN groupadd --gid 10001 insight-bot \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/insight-bot \
               --shell /usr/sbin/nologin insight-bot \
    && mkdir -p /var/lib/insight-bot /var/cache/insight-bot \
    && chown insight-bot:insight-bot /var/lib/insight-bot /var/cache/insight-bot
COPY --from=build /usr/local/bin/insight-bot /usr/local/bin/insight-bot

# The state: the default DATABASE_URL (sqlite://insight-bot.db) is relative, so the working
# directory is where the SQLite file, its WAL and its .lock file live. DATABASE_URL itself is not
# set here: an image default would collide with DATABASE_URL_FILE (setting both is an error).
WORKDIR /var/lib/insight-bot
VOLUME /var/lib/insight-bot
# Embedded insights (a server's own, and a collection at INSIGHTS_PATH) between restarts; losing
# it costs only the time to embed them again.
ENV EMBEDDING_CACHE_DIR=/var/cache/insight-bot
VOLUME /var/cache/insight-bot
# The operators' endpoint (/healthz, /readyz, /metrics), on so that HEALTHCHECK has something to
# ask; on every interface of the container because a published port arrives from outside it.
# Publish it to the host's loopback only (compose.yaml does): it is not for the internet.
ENV METRICS_ADDR=0.0.0.0:9100
EXPOSE 9100

USER 10001:10001
# The bot finishes within 10 s of SIGTERM (posts in flight keep their claim and resume on the
# next start); give it 15 s (compose.yaml's stop_grace_period, `docker stop -t 15`).
STOPSIGNAL SIGTERM
# Slim images have no curl: the binary asks its own /readyz (every shard connected and READY,
# the store answering) and exits 0 or 1. start-period: the first READY can take a while, since
# Discord lets a bot identify one shard per 5 s (raise it for many shards per process).
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m --retries=3 \
    CMD ["insight-bot", "healthcheck"]
ENTRYPOINT ["insight-bot"]
CMD ["run"]
