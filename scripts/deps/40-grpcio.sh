#!/usr/bin/env bash
# The device plugin's protocol judges: Python grpcio (the gRPC C core, as the kubelet-side
# clients in Python and grpc-java send the socket path as HTTP/2 :authority) and grpcio-tools to
# compile crates/device-plugin/proto at test time. Installed from PyPI into the ignored
# .tools/grpcio-venv. Idempotent: does nothing when the venv already imports both.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.tools/grpcio-venv
version=1.76.0
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import grpc, grpc_tools; assert grpc.__version__ == '$version'" 2>/dev/null; then
  exit 0
fi
# Debian's python3 with venv (a machine with only the Rust toolchain may lack either).
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "grpcio==$version" "grpcio-tools==$version"
"$venv/bin/python" -c "import grpc, grpc_tools; print('grpcio', grpc.__version__, 'in $venv')"
