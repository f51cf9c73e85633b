#!/usr/bin/env bash
# Times Omakase's native pipeline on one dataset, end to end (issue 18, point 4):
#
#   bash scripts/scale-workload.sh DIR OUT
#
#   validate  omakase validate --data DIR --json
#   encode    N `omakase encode --shard I/N` processes at once, then `omakase encode --merge`, when the
#             binary has --shard (docs/encoding.md); otherwise one `omakase encode` (the summary says
#             which). Text only: the images, if any, are not encoded
#   train     omakase train --no-encode with a short wall-clock budget ([train] max_seconds), on
#             $OMAKASE_TRAIN_DEVICE when set (passed as --device when the binary has it)
#   export    omakase export (the browser bundle)
#
# Each phase's wall time, CPU time and peak resident memory (the largest process's, from getrusage)
# go to OUT/times/, its output to OUT/logs/, and a summary to OUT/summary.json and OUT/summary.md.
# DIR is any dataset directory; scripts/make-scale-dataset.py makes shop-shaped ones of any size.
# docs/scale.md has the measured figures.
#
# OUT must be empty or absent: the encode phase would otherwise reuse a previous features file as its
# cache and time nothing. The text encoder weights come from scripts/fetch-models.sh.
#
# Environment:
#   OMAKASE_BIN             the omakase binary (default target/release/omakase)
#   OMAKASE_MODELS          the encoder weights (default models/)
#   OMAKASE_ENCODE_SHARDS   parallel encode processes N (default: the number of CPUs)
#   OMAKASE_TRAIN_DEVICE    cpu, cuda, cuda:N or auto (default: the binary's default, the CPU)
#   OMAKASE_TRAIN_SECONDS   the training budget (default 300; the epoch running when it is spent
#                           finishes, so a slow epoch can overrun it)
#   OMAKASE_TRAIN_EPOCHS    at most this many epochs (default 200, the training default)
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 DIR OUT" >&2
  exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=$(cd "$1" && pwd)
out=$2
bin=${OMAKASE_BIN:-$root/target/release/omakase}
cpus=$(nproc)
shards=${OMAKASE_ENCODE_SHARDS:-$cpus}
device=${OMAKASE_TRAIN_DEVICE:-}
train_seconds=${OMAKASE_TRAIN_SECONDS:-300}
train_epochs=${OMAKASE_TRAIN_EPOCHS:-200}
models=()
if [ -n "${OMAKASE_MODELS:-}" ]; then models=(--models "$OMAKASE_MODELS"); fi

say() { printf 'scale-workload: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

[ -x "$bin" ] || die "$bin is not an executable (cargo build --release --bin omakase, or set OMAKASE_BIN)"
[ -f "$data/items.jsonl" ] || die "$data has no items.jsonl"
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  die "$out is not empty (a previous features file there would be reused as the encode cache)"
fi
mkdir -p "$out/logs" "$out/times"
out=$(cd "$out" && pwd)

# measure NAME CMD...: runs CMD (output to logs/NAME.log) and writes times/NAME.json: wall seconds,
# user + system CPU seconds and the peak RSS of the largest process it waited for (ru_maxrss of
# RUSAGE_CHILDREN, as GNU time reports it), with start and end times so that overlapping shards can
# be seen. Python because it needs no package (GNU time is often missing) and reads getrusage exactly.
measure() {
  local name=$1
  shift
  python3 - "$out/times/$name.json" "$out/logs/$name.log" "$@" <<'PY'
import json, resource, subprocess, sys, time
times, log, command = sys.argv[1], sys.argv[2], sys.argv[3:]
start_wall, start = time.time(), time.monotonic()
with open(log, "wb") as f:
    code = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT).returncode
wall = time.monotonic() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(times, "w") as f:
    json.dump({"command": command, "exit": code, "start": start_wall, "end": start_wall + wall,
               "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
               "peak_rss_mib": usage.ru_maxrss / 1024}, f, indent=1)
sys.exit(code)
PY
}

# Runs a phase, or stops the workload naming its log.
phase() {
  local name=$1
  say "$name: ${*:2}"
  measure "$@" || die "$name failed (exit $?): see $out/logs/$name.log"
}

load_before=$(cut -d ' ' -f 1-3 /proc/loadavg)
say "dataset $data, $cpus CPUs, load average $load_before"

# --- validate ------------------------------------------------------------------------------------
phase validate "$bin" validate --data "$data" --json
# The JSON is the log (validate prints nothing else on stdout; warnings would be in problems).
cp "$out/logs/validate.log" "$out/validate.json"

# --- encode --------------------------------------------------------------------------------------
features=$out/features.safetensors
# Help text in a variable, not piped to `grep -q`: under pipefail, grep quitting early can fail the pipe.
encode_help=$("$bin" encode --help)
if [[ $encode_help == *--shard* ]]; then
  encode_mode="sharded: $shards processes (encode --shard I/$shards) + encode --merge"
  # N processes share the machine's CPUs: each gets an equal part of the thread pools, so N
  # processes on C cores do not run N x C threads that fight over caches and the scheduler.
  threads=$(( cpus / shards > 0 ? cpus / shards : 1 ))
  mkdir -p "$out/shards"
  started=$(date +%s.%N)
  pids=()
  for ((i = 0; i < shards; i++)); do
    RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-$threads} CANDLE_NUM_THREADS=${CANDLE_NUM_THREADS:-$threads} \
      measure "encode-shard-$i" "$bin" encode --data "$data" --text-only --shard "$i/$shards" \
      --out "$out/shards/features-$i.safetensors" "${models[@]}" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || die "encode shard $i/$shards failed: see $out/logs/encode-shard-$i.log"
  done
  shard_files=()
  for ((i = 0; i < shards; i++)); do shard_files+=("$out/shards/features-$i.safetensors"); done
  phase encode-merge "$bin" encode --merge "${shard_files[@]}" --out "$features"
  ended=$(date +%s.%N)
  # The phase as a whole: wall from the first shard's start to the merge's end; CPU summed; peak
  # memory summed over the shards (they run at once, so the sum bounds the machine's peak) or the
  # merge's, whichever is larger.
  python3 - "$out/times" "$shards" "$started" "$ended" <<'PY'
import json, sys
from pathlib import Path
times, shards, started, ended = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
parts = [json.loads((times / f"encode-shard-{i}.json").read_text()) for i in range(shards)]
merge = json.loads((times / "encode-merge.json").read_text())
json.dump({"command": ["(shards + merge)"], "exit": 0, "start": started, "end": ended,
           "wall_s": ended - started, "cpu_s": sum(p["cpu_s"] for p in parts) + merge["cpu_s"],
           "peak_rss_mib": max(sum(p["peak_rss_mib"] for p in parts), merge["peak_rss_mib"]),
           "shards_wall_s": max(p["end"] for p in parts) - min(p["start"] for p in parts),
           "merge_wall_s": merge["wall_s"]}, (times / "encode.json").open("w"), indent=1)
PY
else
  encode_mode="one process (this binary's encode has no --shard)"
  phase encode "$bin" encode --data "$data" --text-only --out "$features" "${models[@]}"
fi
say "encode: $encode_mode"

# --- train ---------------------------------------------------------------------------------------
# A short wall-clock budget: the point is the cost per epoch at this size, not the best model.
# --no-encode: the features were just written; train reads them as they are.
cat > "$out/train.toml" <<EOF
# Written by scripts/scale-workload.sh.
[encode]
features = "$features"
images = false

[train]
epochs = $train_epochs
max_seconds = $train_seconds
EOF
train_args=(train --data "$data" --out "$out/run" --config "$out/train.toml" --no-encode)
device_mode="cpu (the binary's default)"
if [ -n "$device" ]; then
  train_help=$("$bin" train --help)
  if [[ $train_help == *--device* ]]; then
    train_args+=(--device "$device")
    device_mode=$device
  else
    say "warning: OMAKASE_TRAIN_DEVICE=$device but this binary's train has no --device: training on the CPU"
    device_mode="cpu (OMAKASE_TRAIN_DEVICE=$device asked, but this binary has no --device)"
  fi
fi
phase train "$bin" "${train_args[@]}"

# --- export --------------------------------------------------------------------------------------
phase export "$bin" export --model "$out/run" --data "$data" --out "$out/bundle"

load_after=$(cut -d ' ' -f 1-3 /proc/loadavg)

# --- summary -------------------------------------------------------------------------------------
# The commit says which scripts ran; the binary's path and build time say which omakase did (a binary
# is often built from another tree, or copied to the GPU machine).
python3 - "$out" "$data" "$cpus" "$load_before" "$load_after" "$encode_mode" "$device_mode" \
  "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" "$bin" <<'PY'
import json, sys, time
from pathlib import Path

out, data, cpus, load_before, load_after, encode_mode, device_mode, commit, binary = sys.argv[1:]
built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(Path(binary).stat().st_mtime))
out = Path(out)
dataset = json.loads((out / "validate.json").read_text())
times = {p: json.loads((out / "times" / f"{p}.json").read_text()) for p in ("validate", "encode", "train", "export")}
run = json.loads((out / "run" / "run.json").read_text())
epochs = [json.loads(line) for line in (out / "run" / "history.jsonl").read_text().splitlines() if line.strip()]
train_epochs = [e for e in epochs if e["stage"] == "train"]
per_epoch = sum(e["seconds"] for e in train_epochs) / len(train_epochs) if train_epochs else None
bundle_bytes = sum(f.stat().st_size for f in (out / "bundle").rglob("*") if f.is_file())

items, interactions = dataset["items"], dataset["interactions"]
# What each phase's rate counts: validate reads interactions, encode and export handle items, and a
# training epoch passes over the interactions once (its rate is per epoch, from RUN/history.jsonl).
rates = {
    "validate": (interactions / times["validate"]["wall_s"], "interactions/s"),
    "encode": (items / times["encode"]["wall_s"], "items/s"),
    "train": (interactions / per_epoch if per_epoch else 0.0, "interactions/s per epoch"),
    "export": (items / times["export"]["wall_s"], "items/s"),
}
phases = []
for name, t in times.items():
    rate, unit = rates[name]
    phases.append({"phase": name, "wall_s": round(t["wall_s"], 1), "cpu_s": round(t["cpu_s"], 1),
                   "peak_rss_mib": round(t["peak_rss_mib"], 1), "rate": round(rate, 1), "rate_unit": unit})
summary = {
    "dataset": {"dir": data, "items": items, "users": dataset["users"], "interactions": interactions},
    "machine": {"cpus": int(cpus), "load_average_before": load_before, "load_average_after": load_after},
    "commit": commit,
    "binary": {"path": binary, "built": built},
    "encode_mode": encode_mode,
    "train_device": device_mode,
    "phases": phases,
    "total_wall_s": round(sum(t["wall_s"] for t in times.values()), 1),
    "encode_detail": {k: round(v, 1) for k, v in times["encode"].items() if k in ("shards_wall_s", "merge_wall_s")},
    "train": {"epochs": len(train_epochs), "seconds_per_epoch": round(per_epoch, 1) if per_epoch else None,
              "best_epoch": run.get("best_epoch"), "best_valid_ndcg@10": run.get("best_valid_ndcg@10")},
    "bundle_bytes": bundle_bytes,
}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")

lines = [
    f"# Scale workload: {items:,} items, {dataset['users']:,} users, {interactions:,} interactions",
    "",
    f"{cpus} CPUs, load average {load_before} before and {load_after} after; commit {commit}; "
    f"{binary} built {built}.",
    f"Encode: {encode_mode}. Train: {device_mode}, {len(train_epochs)} epoch(s) of "
    f"{summary['train']['seconds_per_epoch']} s, best validation NDCG@10 "
    f"{summary['train']['best_valid_ndcg@10']:.4f}. Bundle {bundle_bytes / 2**20:.1f} MiB.",
    "",
    "| phase | wall s | CPU s | rate | peak RSS MiB |",
    "|---|---:|---:|---|---:|",
]
for p in phases:
    lines.append(f"| {p['phase']} | {p['wall_s']} | {p['cpu_s']} | {p['rate']:,.1f} {p['rate_unit']} | {p['peak_rss_mib']} |")
lines.append(f"| total | {summary['total_wall_s']} | | | |")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
