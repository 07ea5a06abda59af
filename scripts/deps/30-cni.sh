#!/usr/bin/env bash
# CNI plugin tests: the reference plugins (host-local, static in /usr/lib/cni) and a real libcni
# runtime. Debian's golang-github-appc-cni-dev ships libcni's source but not cnitool, so
# crates/cni/tools/libcni-run (a cnitool equivalent on libcni) is built offline with Debian's Go
# into the ignored /.tools/bin. Idempotent: does nothing when it is already built.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.tools/bin/libcni-run
# The reference IPAM plugins, also where the lab guest (repo at /mnt/host) can run them.
copy_plugins() {
  mkdir -p .tools/cni-bin
  for p in host-local static; do
    [ -x .tools/cni-bin/$p ] || cp /usr/lib/cni/$p .tools/cni-bin/$p
  done
}
if [ -x "$out" ] && [ -x .tools/cni-bin/static ]; then exit 0; fi
need=()
for pkg in golang-go golang-github-appc-cni-dev containernetworking-plugins; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
copy_plugins
[ -x "$out" ] && exit 0
mkdir -p .tools/bin .tools/gopath/src/sriovrs
ln -sfn "$PWD/crates/cni/tools/libcni-run" .tools/gopath/src/sriovrs/libcni-run
# GOPATH mode over Debian's gocode tree: no module download, no network.
GOPATH="$PWD/.tools/gopath:/usr/share/gocode" GO111MODULE=off GOCACHE="$PWD/.tools/gocache" \
  go build -o "$out" sriovrs/libcni-run
echo "built $out"
copy_plugins
