#!/usr/bin/env bash
# Debian packages the host-side tests use: iproute2 (ip netns, veth), the reference CNI plugins
# (host-local, static, tuning in /usr/lib/cni), and openssl + curl (the webhook's TLS and body-limit
# tests use them as independent clients), jq (scripts/run-test-binaries reads cargo's JSON).
set -euo pipefail
need=()
for pkg in iproute2 containernetworking-plugins openssl curl jq; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
