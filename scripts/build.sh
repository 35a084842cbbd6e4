#!/usr/bin/env bash
# Builds hookd optimised, without a second cargo profile: the dev profile
# (every dependency, RocksDB included, already optimised) with hookd's own
# crate raised to opt-level 3. A release profile would compile RocksDB's
# C++ a second time. Arguments go to cargo, e.g.:  scripts/build.sh --bin hookd
#
# The Dockerfile's build stage runs this script, and so does CI (before its
# benchmark smoke run), so the image's build commands are exercised.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
build_deps
exec cargo build --locked \
  --config 'profile.dev.package.hookd.opt-level=3' \
  --config 'profile.dev.package.hookd.debug-assertions=false' \
  "$@"
