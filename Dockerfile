# The `sluice` image: `docker build -t sluice .` from the repository root.
# One binary for every role: `serve` (the default command), `api`, `worker`, `migrate`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The caches keep downloaded crates and compiled dependencies between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sluice \
    && install -D -m 0755 target/release/sluice /out/sluice

FROM debian:bookworm-slim
# git and openssh-client check out repositories; ca-certificates for https.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git openssh-client tini \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 sluice \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/sluice --no-create-home \
        --shell /usr/sbin/nologin sluice \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/sluice
COPY --from=build /out/sluice /usr/local/bin/sluice
USER 10001:10001
WORKDIR /var/lib/sluice
ENV SLUICE_BIND=0.0.0.0:8080 \
    SLUICE_DATA_DIR=/var/lib/sluice
EXPOSE 8080
# tini as PID 1 reaps whatever is re-parented to it (the step supervisor reaps its own tree,
# but a supervisor killed outright leaves its children to PID 1).
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/sluice"]
CMD ["serve"]
