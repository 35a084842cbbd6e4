#!/usr/bin/env bash
# Builds hookd and the load harness optimised, then runs the harness.
# Arguments go to hookd-bench, e.g.:  scripts/bench.sh ingest --clients 64
#
# The dev profile is the one CI builds, with every dependency (RocksDB
# included) already optimised; only hookd's own crate is raised to
# opt-level 3 here, so no second copy of RocksDB is compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
build_deps
optimised=(--config 'profile.dev.package.hookd.opt-level=3' --config 'profile.dev.package.hookd.debug-assertions=false')
cargo build "${optimised[@]}" --bin hookd --bin hookd-bench
target="${CARGO_TARGET_DIR:-/var/tmp/hookd-target}"
exec "$target/debug/hookd-bench" "$@"
