#!/usr/bin/env bash
# The pod sandbox image of the test suite's real node (crates/testcluster:
# Cluster::start_containerd_node): target/images/pause.tar, from scripts/images. Idempotent:
# rebuilt only when images/pause/pause.c or scripts/images is newer than the tarball.
set -euo pipefail
cd "$(dirname "$0")/../.."
tarball=target/images/pause.tar
if [ -f "$tarball" ] && [ "$tarball" -nt images/pause/pause.c ] && [ "$tarball" -nt scripts/images ]; then
  exit 0
fi
scripts/images pause
