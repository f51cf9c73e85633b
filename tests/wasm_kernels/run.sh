#!/usr/bin/env bash
# Builds the runtime kernels for wasm32 (+simd128, from .cargo/config.toml) as a bare module and runs
# run.mjs under node: simd128 vs the scalar reference (bit for bit), then the scan timings.
#   tests/wasm_kernels/run.sh [SIZES...]     e.g. tests/wasm_kernels/run.sh 100000
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../../target}"
cargo build --release --target wasm32-unknown-unknown >&2
node run.mjs "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/omakase_wasm_kernels.wasm" "$@"
