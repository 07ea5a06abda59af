#!/usr/bin/env bash
# h2load (Debian nghttp2-client): the load generator of the injector benchmark
# (crates/injector/benches/admission.rs), a client we did not write.
set -euo pipefail
if ! command -v h2load >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null
fi
