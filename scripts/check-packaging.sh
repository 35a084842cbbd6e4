#!/usr/bin/env bash
# Checks the image definition and the Helm chart (CI runs this from test.sh):
# hadolint on the Dockerfile; helm lint --strict; helm template with the
# default values and each realistic values file in helm/hookd/ci, every
# rendering validated against Kubernetes' schemas and checked by
# scripts/check_manifests.py (which also runs `hookd check-config` on the
# rendered config); and values that must be refused at install.
# Needs a built hookd binary (the test script builds one first).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
packaging_deps
hookd_binary="${CARGO_TARGET_DIR:-/var/tmp/hookd-target}/debug/hookd"
chart=helm/hookd
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== hadolint Dockerfile" >&2
hadolint Dockerfile

for values in default "$chart"/ci/*.yaml; do
  name="$(basename "$values" .yaml)"
  args=()
  if [ "$values" != default ]; then args=(--values "$values"); fi
  echo "== helm lint --strict, helm template: $name" >&2
  helm lint --strict --quiet "$chart" "${args[@]}"
  helm template hookd "$chart" "${args[@]}" >"$out/$name.yaml"
  "$TOOLS/venv/bin/python" scripts/check_manifests.py "$out/$name.yaml" "$hookd_binary"
done

echo "== values the chart must refuse" >&2
refuse() {
  local why="$1"; shift
  if helm template hookd "$chart" "$@" >/dev/null 2>"$out/refused.txt"; then
    echo "check-packaging: the chart accepted values with $why" >&2
    exit 1
  fi
  echo "refused ($why): $(grep -m1 -E 'at |error|fail' "$out/refused.txt" | sed 's/^[[:space:]-]*//')" >&2
}
refuse "a negative replica count" --set replicaCount=-1
refuse "a ServiceMonitor without an admin token" --set serviceMonitor.enabled=true
refuse "a storage path the chart owns" --set hookd.config.storage.path=/tmp/x
refuse "an endpoint id with a space" --set 'hookd.config.endpoints[0].id=a b' \
  --set 'hookd.config.endpoints[0].url=https://x.example' --set 'hookd.config.endpoints[0].events[0]=*'
refuse "an unknown value" --set hookd.replicas=3
refuse "a malformed volume size" --set hookd.persistence.size=lots
refuse "a NATS URL that is not one" --set hookd.cluster.natsUrl=http://nats:4222
refuse "an unknown cluster ack" --set hookd.cluster.natsUrl=nats://nats:4222 --set hookd.cluster.ack=all
echo "check-packaging: ok" >&2
