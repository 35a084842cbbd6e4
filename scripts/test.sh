#!/usr/bin/env bash
# Runs every check CI runs: formatting, the dependency audit, clippy with
# warnings as errors, the whole test suite, a smoke run of the load
# harness, and the packaging checks (Dockerfile, Helm chart). Clippy and the tests share the dev
# profile, so RocksDB's C++ is compiled once.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
build_deps
test_deps
nats_deps

echo "== cargo fmt --check" >&2
cargo fmt --check
echo "== cargo audit: Cargo.lock against the RustSec advisories" >&2
scripts/audit.sh
echo "== cargo clippy" >&2
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test" >&2
# The hostile-client tests hold over a thousand connections open, and the
# disk-full test mounts a small tmpfs (as root, as CI runs).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo test --all-targets --locked
echo "== hookd-bench smoke run" >&2
# A second or so of every figure, so the load harness cannot rot. Built by
# scripts/build.sh, the command the Dockerfile's build stage runs.
scripts/build.sh --bins
"${CARGO_TARGET_DIR:-/var/tmp/hookd-target}/debug/hookd-bench" all --smoke --seconds 1
echo "== packaging: Dockerfile and Helm chart" >&2
scripts/check-packaging.sh
