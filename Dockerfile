# syntax=docker/dockerfile:1
#
# hookd's image: built with scripts/build.sh (the command CI runs too), run
# as a non-root user on distroless's C++ runtime (glibc and libstdc++, which
# RocksDB needs; no shell, no package manager).
#
#   docker build -t hookd .
#   docker run --network container:my-app -v hookd-data:/var/lib/hookd hookd
#
# Both listeners stay on the container's loopback: the app reaches hookd by
# sharing its network namespace (a Kubernetes pod, `--network container:`,
# compose's `network_mode: service:`). To publish ingest instead, set
# HOOKD_INGEST__LISTEN=0.0.0.0:8787 together with HOOKD_INGEST__TOKEN (hookd
# refuses to listen beyond loopback without it).

FROM rust:1.95-bookworm AS build
WORKDIR /src
ENV CARGO_TARGET_DIR=/src/target
# What RocksDB's bindings need (clang, libclang), installed by the same
# function the repo's scripts use.
COPY scripts/setup.sh scripts/build.sh scripts/
RUN bash -c 'source scripts/setup.sh && build_deps'

# Dependencies (RocksDB's C++ most of all) in their own layer: it is built
# again only when Cargo.toml or Cargo.lock changes, not for every source edit.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src bench \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > bench/main.rs \
 && touch src/lib.rs \
 && scripts/build.sh --bin hookd \
 && rm -rf src bench

# hookd itself. The sources' times may be older than the placeholder's
# build, so they are touched to make cargo build them.
COPY src src
COPY bench bench
RUN find src bench -name '*.rs' -exec touch {} + \
 && scripts/build.sh --bin hookd \
 && install -D -s -m 0755 target/debug/hookd /out/hookd \
 && install -d -m 0750 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/hookd /usr/local/bin/hookd
COPY config/hookd.toml /etc/hookd/hookd.toml
COPY --from=build --chown=65532:65532 /out/data /var/lib/hookd
USER 65532:65532
# The config file and the store's directory. Both listeners stay on
# loopback (the probes and `hookd healthcheck` use the admin one there): a
# listener on every interface needs its token, for example
# HOOKD_INGEST__LISTEN=0.0.0.0:8787 with HOOKD_INGEST__TOKEN, or
# HOOKD_ADMIN__LISTEN=0.0.0.0:8788 with HOOKD_ADMIN__TOKEN.
ENV HOOKD_CONFIG=/etc/hookd/hookd.toml \
    HOOKD_STORAGE__PATH=/var/lib/hookd \
    HOOKD_TELEMETRY__LOG_FORMAT=json
VOLUME ["/var/lib/hookd"]
EXPOSE 8787 8788
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/hookd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/hookd"]
CMD ["serve"]
