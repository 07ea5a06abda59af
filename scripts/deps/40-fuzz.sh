#!/usr/bin/env bash
# Fuzzing (scripts/fuzz): cargo-fuzz, built from crates.io into the ignored .tools/ (its lock file,
# --locked), and the nightly toolchain that cargo-fuzz's instrumentation flags need. Idempotent:
# does nothing when that cargo-fuzz version is there and nightly is installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=0.13.2
bin=.tools/bin/cargo-fuzz
if ! rustup toolchain list | grep -q '^nightly'; then
  # Stated to be on CI machines; installing it needs the Rust distribution server.
  rustup toolchain install nightly --profile minimal
fi
if [ -x "$bin" ] && [ "$("$bin" --version)" = "cargo-fuzz $version" ]; then exit 0; fi
cargo install cargo-fuzz --version "$version" --locked --root .tools
