#!/usr/bin/env bash
# A real node for the tests (crates/testcluster: Cluster::start_containerd_node) and offline OCI
# images (scripts/images): Debian's containerd (1.6) + runc (the kubelet's container runtime), the
# reference CNI plugins (bridge + host-local: the node's default network), umoci + skopeo (build and
# save OCI images without a registry or a daemon), gcc + libc6-dev (the static pause binary) and
# musl-tools (the x86_64-unknown-linux-musl target's linker for static component images), binutils
# (objcopy: the test images of scripts/images --test-from; ldd comes with libc-bin).
# Idempotent: installs only what is missing; never starts the package's containerd service.
set -euo pipefail
need=()
for pkg in containerd runc umoci skopeo containernetworking-plugins gcc libc6-dev musl-tools binutils; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  # No init system runs here; policy-rc.d keeps the package's own containerd service from starting.
  policy=/usr/sbin/policy-rc.d
  created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ "$created" = 0 ] || rm -f "$policy"
fi
for bin in containerd containerd-shim-runc-v2 ctr runc umoci skopeo; do
  command -v "$bin" >/dev/null || { echo "45-containerd.sh: $bin missing after install" >&2; exit 1; }
done
# Static component images: the musl target, when the Rust distribution server is reachable
# (scripts/images falls back to a glibc-static build otherwise and says so).
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  rustup target add x86_64-unknown-linux-musl || echo "45-containerd.sh: no musl target (offline?)" >&2
fi
