#!/usr/bin/env bash
# Installs what building and testing hookd needs on a fresh Debian machine
# that has only Rust: clang and libclang (RocksDB's bindings are generated
# with bindgen, and its C++ is compiled with the system compiler).
# Sourced by run.sh and test.sh; safe to run again, it installs only what
# is missing.
set -euo pipefail

missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v g++ >/dev/null 2>&1 || missing+=(g++)

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
