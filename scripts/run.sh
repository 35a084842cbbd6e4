#!/usr/bin/env bash
# Runs hookd with the example config (config/hookd.toml): embedded RocksDB
# in ./data, nothing else to start. Extra arguments go to `hookd serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
build_deps
exec cargo run --bin hookd -- serve --config config/hookd.toml "$@"
