#!/usr/bin/env bash
# Encoding throughput on a device against the CPU, measured in the same run on the same machine
# (issue 18, point 2), and how far the device's features are from the CPU's:
#
#   bash scripts/bench-encode-gpu.sh DATA [DEVICE]        # DEVICE: cuda (default), cuda:N
#
# Each round encodes DATA from scratch (a fresh --out, so nothing comes from the cache) with the CPU
# kernels (`--device cpu`, every core of this machine) and then on DEVICE (the candle path), alternating,
# ROUNDS times (default 2: the first device run also pays for loading candle's kernels). It prints every
# run's text and image items/s as `omakase encode` reports them (rows encoded / the modality's wall time:
# hashing, tokenizing or reading, decoding and cropping included), the ratios of the best run of each,
# and scripts/compare-features.py between the last CPU and device files.
#
# Environment:
#   OMAKASE      the binary [target/cuda/release/omakase when there, else target/release/omakase]
#   MODELS       the folder of scripts/fetch-models.sh [$OMAKASE_MODELS, else models/]
#   ROUNDS       rounds of (CPU, device) [2]
#   DEVICE_ARGS  what selects the device path [--device DEVICE]; `--device cpu --candle` runs the
#                candle path on the CPU, to try the script on a machine without a GPU
#   EXTRA_ARGS   added to every run (e.g. --text-only); KEEP=1 keeps the work folder
set -euo pipefail

# Paths given relative to the caller's folder, before moving to the repository's.
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
data="$(absolute "${1:?usage: bench-encode-gpu.sh DATA [DEVICE]}")"
device="${2:-cuda}"
[ -n "${OMAKASE:-}" ] && OMAKASE="$(absolute "$OMAKASE")"
models="$(absolute "${MODELS:-${OMAKASE_MODELS:-models}}")"
cd "$(dirname "$0")/.."
scripts="$PWD/scripts"
if [ -z "${OMAKASE:-}" ]; then
  OMAKASE="$PWD/target/release/omakase"
  [ -x target/cuda/release/omakase ] && OMAKASE="$PWD/target/cuda/release/omakase"
fi
rounds="${ROUNDS:-2}"
read -r -a device_args <<< "${DEVICE_ARGS:---device $device}"
read -r -a extra_args <<< "${EXTRA_ARGS:-}"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-encode-gpu.XXXXXX")"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

echo "binary   $OMAKASE ($(date -r "$OMAKASE" '+built %Y-%m-%d %H:%M'))"
echo "dataset  $data; models $models; $(nproc) CPU cores; $rounds round(s)"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | sed 's/^/gpu      /'

# One run: `omakase encode` into a fresh file; prints "label device text/s image/s seconds".
run() {
  local label="$1" out="$work/$1.safetensors"; shift
  local log="$work/$label.log"
  if ! "$OMAKASE" encode --data "$data" --models "$models" --out "$out" "$@" ${extra_args[@]+"${extra_args[@]}"} > "$log" 2> "$work/$label.err"; then
    cat "$log" "$work/$label.err" >&2
    echo "bench-encode-gpu: $label failed (above)" >&2
    exit 1
  fi
  local path text image total
  path="$(sed -n 's/^device *//p' "$log")"
  text="$(sed -n 's/^text .*, \([0-9.]*\) items\/s).*/\1/p' "$log")"
  image="$(sed -n 's/^image .*, \([0-9.]*\) items\/s;.*/\1/p' "$log")"
  total="$(sed -n 's/^time *\([0-9.]*\) s.*/\1/p' "$log")"
  printf '%-8s %-20s %14s %14s %10s\n' "$label" "$path" "$text" "$image" "$total"
}

printf '\n%-8s %-20s %14s %14s %10s\n' run path "text items/s" "image items/s" "total s"
results="$work/results"
for round in $(seq 1 "$rounds"); do
  run "cpu-$round" --device cpu | tee -a "$results"
  run "dev-$round" "${device_args[@]}" | tee -a "$results"
done

# Best run of each: the largest items/s per modality.
awk '
  { side = ($1 ~ /^cpu/) ? "cpu" : "dev"
    if ($(NF-2) > text[side]) text[side] = $(NF-2)
    if ($(NF-1) > image[side]) image[side] = $(NF-1) }
  END {
    printf "\nbest     text: CPU %.1f, device %.1f items/s", text["cpu"], text["dev"]
    if (text["cpu"] > 0) printf " (%.1fx)", text["dev"] / text["cpu"]
    printf "; image: CPU %.1f, device %.1f items/s", image["cpu"], image["dev"]
    if (image["cpu"] > 0) printf " (%.1fx)", image["dev"] / image["cpu"]
    printf "\n"
  }' "$results"

echo
echo "features of dev-$rounds against cpu-$rounds (scripts/compare-features.py):"
if command -v python3 > /dev/null; then
  python3 "$scripts/compare-features.py" "$work/cpu-$rounds.safetensors" "$work/dev-$rounds.safetensors"
else
  echo "no python3 here: run it elsewhere on the two files (KEEP=1 keeps them in $work)"
fi
