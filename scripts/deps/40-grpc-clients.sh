#!/usr/bin/env bash
# The device plugin's protocol judges, gRPC clients we did not write (tests/grpcio.rs):
# * Python grpcio (the gRPC C core; like grpc-java it sends the socket path as HTTP/2
#   :authority) and grpcio-tools to compile crates/device-plugin/proto at test time, from PyPI
#   into the ignored .tools/grpcio-venv;
# * grpc-go as the kubelet dials a plugin (crates/device-plugin/tools/grpc-go-client), built
#   offline with Debian's Go and golang-google-grpc-dev into .tools/bin.
# Idempotent: does nothing when both are there.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.tools/grpcio-venv
version=1.76.0
if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import grpc, grpc_tools; assert grpc.__version__ == '$version'" 2>/dev/null; }; then
  # Debian's python3 with venv (a machine with only the Rust toolchain may lack either).
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "grpcio==$version" "grpcio-tools==$version"
  "$venv/bin/python" -c "import grpc, grpc_tools; print('grpcio', grpc.__version__, 'in $venv')"
fi

out=.tools/bin/grpc-go-client
[ -x "$out" ] && exit 0
need=()
for pkg in golang-go golang-google-grpc-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
mkdir -p .tools/bin .tools/gopath/src/sriovrs
ln -sfn "$PWD/crates/device-plugin/tools/grpc-go-client" .tools/gopath/src/sriovrs/grpc-go-client
# GOPATH mode over Debian's gocode tree: no module download, no network.
GOPATH="$PWD/.tools/gopath:/usr/share/gocode" GO111MODULE=off GOCACHE="$PWD/.tools/gocache" \
  go build -o "$out" sriovrs/grpc-go-client
echo "built $out"
