#!/usr/bin/env bash
# The sriov-cni image of the single-node test (crates/operator/tests/single_node.rs: the config
# daemon's CNI init container on the real node): target/images/sriov-cni.tar, from
# scripts/images. Only this component: sriov-cni has a handful of dependencies (no kube, no
# tokio), so its musl release build is the cheap one; the other component images are
# `scripts/images components` (minutes cold). Cargo decides whether anything is rebuilt; packing
# is a second. Skipped, loudly, without the musl target (the test then fails under CI=true).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "47-cni-image.sh: no x86_64-unknown-linux-musl target, no sriov-cni image" >&2
  exit 0
fi
scripts/images sriov-cni
