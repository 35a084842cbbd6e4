#!/usr/bin/env bash
# Builds hookd and the load harness optimised (scripts/build.sh), then runs
# the harness. Arguments go to hookd-bench, e.g.:  scripts/bench.sh ingest --clients 64
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --bin hookd --bin hookd-bench
exec "${CARGO_TARGET_DIR:-/var/tmp/hookd-target}/debug/hookd-bench" "$@"
