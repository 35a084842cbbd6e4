#!/usr/bin/env bash
# What building and testing hookd needs on a fresh Debian machine that has
# only Rust. Sourced by run.sh (build_deps) and test.sh (both); each
# function installs only what is missing, so running it again is cheap.
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

apt_install() {
  echo "setup: installing $*" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# RocksDB's bindings are generated with bindgen (libclang), and its C++ is
# compiled with the system compiler.
build_deps() {
  local missing=()
  command -v clang >/dev/null 2>&1 || missing+=(clang)
  ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || missing+=(libclang-dev)
  command -v g++ >/dev/null 2>&1 || missing+=(g++)
  if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
}

# The tests run real programs under Node: subscribers (the SPEC's snippet,
# the official Standard Webhooks verifier) and the dashboard's browser test
# (playwright-core driving Debian's chromium; it never downloads a browser).
# promtool (Debian's prometheus package) checks the /metrics output.
test_deps() {
  local missing=()
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
  if [ ! -d tests/node/node_modules/standardwebhooks ] || [ ! -d tests/node/node_modules/playwright-core ]; then
    (cd tests/node && npm ci --no-audit --no-fund --silent)
  fi
}
