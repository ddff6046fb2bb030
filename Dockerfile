# syntax=docker/dockerfile:1
#
# bb-remote images, built on the stock Aztec image (nothing of it changed but bb's path):
#
#   docker build --target prover --build-arg AZTEC_TAG=<tag> -t aztec-bb-remote:<tag> .
#   docker build --target worker --build-arg AZTEC_TAG=<tag> -t bb-remote-worker:<tag> .
#
# No Docker engine runs on the project's CI machine: shim-tests/dockerfile.rs checks what
# can be checked without one (see README, "Deployment").

ARG AZTEC_TAG=latest
ARG RUST_IMAGE=rust:1.95-bookworm

# ---- build: the two binaries, with the locked dependency set ------------------------------
# The shim is built without the `worker` feature, so it carries no HTTP server, database
# or sandboxing code, and linked statically by scripts/build-shim (the cheapest passthrough;
# it execs the native bb, BB_REMOTE_NATIVE_BIN below). The operator tool (with
# `bb-remote worker`) is built with the feature.
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN scripts/build-shim --no-default-features \
 && install -D -m 0755 target/release/bb /out/bb \
 && cargo build --release --locked --bin bb-remote \
 && install -D -m 0755 target/release/bb-remote /out/bb-remote

# ---- prover: the stock image whose bb is the shim; the native bb moved aside --------------
FROM aztecprotocol/aztec:${AZTEC_TAG} AS prover
# The path the stock image's BB_BINARY_PATH names and the prover agents exec.
ARG BB_PATH=/usr/src/barretenberg/cpp/build/bin/bb
RUN mv "${BB_PATH}" "${BB_PATH}.native"
COPY --from=build /out/bb /usr/src/barretenberg/cpp/build/bin/bb
COPY --from=build /out/bb-remote /usr/local/bin/bb-remote
# Passthrough by exec: every non-delegated command runs the native bb, replacing the shim.
# Set BB_REMOTE_BACKEND and BB_REMOTE_STORE at run time to delegate the heavy commands.
ENV BB_REMOTE_NATIVE_BIN=/usr/src/barretenberg/cpp/build/bin/bb.native

# ---- worker: the reference TES backend running the image's own native bb -----------------
FROM aztecprotocol/aztec:${AZTEC_TAG} AS worker
COPY --from=build /out/bb-remote /usr/local/bin/bb-remote
# Mount a filled CRS directory here (or bake one in with a derived image); tasks never download one.
VOLUME ["/crs", "/var/lib/bb-remote"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bb-remote", "worker", \
            "--bb", "/usr/src/barretenberg/cpp/build/bin/bb", \
            "--crs-dir", "/crs", \
            "--data-dir", "/var/lib/bb-remote", \
            "--listen", "0.0.0.0:8080"]
