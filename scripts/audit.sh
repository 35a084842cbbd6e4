#!/usr/bin/env bash
# Checks Cargo.lock against the RustSec advisory database: vulnerabilities,
# unsound and unmaintained crates, and yanked versions all fail, except
# what .cargo/audit.toml lists with its reason.
#
# CI cannot reach the database's git host, so the database is the snapshot
# in security/advisory-db.tar.gz (security/README.md: how to refresh it).
# cargo-audit itself comes from crates.io, built once into the tools
# directory.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${PACKAGING_TOOLS_DIR:-/var/tmp/hookd-tools}"
CARGO_AUDIT_VERSION="0.22.2"
AUDIT="$TOOLS/cargo-audit-$CARGO_AUDIT_VERSION/bin/cargo-audit"
if [ ! -x "$AUDIT" ]; then
  echo "audit: installing cargo-audit $CARGO_AUDIT_VERSION from crates.io" >&2
  # Its own target directory, so hookd's build cache is not touched.
  CARGO_TARGET_DIR="$TOOLS/cargo-audit-build" cargo install --quiet --locked --no-default-features \
    --version "$CARGO_AUDIT_VERSION" --root "$TOOLS/cargo-audit-$CARGO_AUDIT_VERSION" cargo-audit
  rm -rf "$TOOLS/cargo-audit-build"
fi

db="$(mktemp -d)"
trap 'rm -rf "$db"' EXIT
tar -xzf security/advisory-db.tar.gz -C "$db"
# cargo-audit reads the database as a git repository: give the snapshot one
# commit, dated as the snapshot is.
snapshot_date="$(cat security/advisory-db.date)"
(
  cd "$db/advisory-db"
  git init -q
  git add -A
  GIT_AUTHOR_DATE="$snapshot_date" GIT_COMMITTER_DATE="$snapshot_date" \
    git -c user.name=hookd -c user.email=hookd@localhost commit -q -m "RustSec advisory database snapshot"
)
"$AUDIT" audit --no-fetch --stale --db "$db/advisory-db" --deny warnings
