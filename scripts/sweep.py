#!/usr/bin/env python3
"""Trains settings x seeds and compares each setting with the first (the default) on the same test cases.

    python3 scripts/sweep.py --data DIR --out SWEEP [--protocol warm] [--seeds 42 43 44] [--jobs 2] \
        default.toml residuals.toml ...

Each SETTING.toml is an `omakase train --config` file without a `seed` (the sweep sets `[train] seed`).
For every setting and seed it runs `omakase train` into SWEEP/<setting>-<seed> (resumable: a killed sweep
picks up where it stopped, finished runs are kept), then `omakase eval --protocol P --json`, and for
every setting but the first `--against` the first setting's run of the same seed: the paired NDCG@10
difference on the same test cases, with its 95 % bootstrap interval (docs/evaluation.md).

Prints, per setting: test NDCG@10 (unmasked and masked) as mean +- sd over the seeds, the validation
figure that picked the epoch (and the validation-to-test gap), the paired difference to the default per
seed (with the number of seeds whose interval excludes 0) and the training cost in CPU-minutes. A
default changes only on such evidence (issue "accuracy", point 6). Writes SWEEP/summary.json too.

Only the standard library; the `omakase` binary is `--omakase PATH` (default: target/release/omakase,
built with `cargo build --release --bin omakase`).
"""

import argparse
import concurrent.futures
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path


def seeded_config(text: str, seed: int, source: Path) -> str:
    """The setting's TOML with `[train] seed = SEED` (the setting itself must not set one)."""
    if re.search(r"^\s*seed\s*=", text, re.MULTILINE):
        sys.exit(f"{source}: sets `seed`; the sweep sets it (leave it out)")
    if re.search(r"^\s*\[train\]\s*$", text, re.MULTILINE):
        return re.sub(r"^(\s*\[train\]\s*)$", rf"\1\nseed = {seed}", text, count=1, flags=re.MULTILINE)
    return f"{text.rstrip()}\n\n[train]\nseed = {seed}\n"


def run(command: list[str], log: Path) -> int:
    with log.open("ab") as out:
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode


def train(args, setting: Path, seed: int) -> Path:
    out = args.out / f"{setting.stem}-{seed}"
    config = args.out / "configs" / f"{setting.stem}-{seed}.toml"
    config.write_text(seeded_config(setting.read_text(), seed, setting))
    command = [args.omakase, "train", "--data", str(args.data), "--out", str(out), "--config", str(config)]
    if args.no_encode:
        command.append("--no-encode")
    if run(command, args.out / "logs" / f"train-{out.name}.log") != 0:
        sys.exit(f"training {out} failed: see {args.out / 'logs' / f'train-{out.name}.log'}")
    return out


def evaluate(args, run_dir: Path, against: Path | None) -> dict:
    command = [args.omakase, "eval", "--model", str(run_dir), "--data", str(args.data),
               "--protocol", args.protocol, "--json"]
    if against is not None:
        command += ["--against", str(against)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"evaluating {run_dir} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} +- {sd:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--protocol", default="warm", choices=["warm", "cold"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--jobs", type=int, default=1, help="training runs at once")
    parser.add_argument("--omakase", default="target/release/omakase")
    parser.add_argument("--no-encode", action="store_true", help="passed to train: read [encode] features as is")
    parser.add_argument("settings", type=Path, nargs="+", help="config files; the first is the default")
    args = parser.parse_args()
    if len({s.stem for s in args.settings}) != len(args.settings):
        sys.exit("settings must have distinct file names (they name the runs)")
    for folder in ("configs", "logs"):
        (args.out / folder).mkdir(parents=True, exist_ok=True)

    jobs = [(setting, seed) for setting in args.settings for seed in args.seeds]
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = dict(zip(jobs, pool.map(lambda job: train(args, *job), jobs)))

    default = args.settings[0]
    summary = {"data": str(args.data), "protocol": args.protocol, "seeds": args.seeds, "settings": {}}
    print(f"{'setting':<20} {'test N@10':>18} {'masked N@10':>18} {'valid N@10':>18} {'gap':>8} "
          f"{'vs default (per seed)':>34} {'cpu min':>8}")
    for setting in args.settings:
        figures = []
        for seed in args.seeds:
            against = runs[(default, seed)] if setting != default else None
            report = evaluate(args, runs[(setting, seed)], against)
            info = json.loads((runs[(setting, seed)] / "run.json").read_text())
            figures.append({
                "seed": seed,
                "test_ndcg10": report["metrics"]["ndcg@10"],
                "test_ndcg10_masked": report["metrics_masked"]["ndcg@10"],
                "valid_ndcg10": info.get("best_valid_ndcg@10"),
                "best_epoch": info.get("best_epoch"),
                "cpu_minutes": (info.get("cpu_seconds") or 0.0) / 60.0,
                "vs_default": report.get("against", {}).get("ndcg10_difference"),
            })
        summary["settings"][setting.stem] = figures
        test = [f["test_ndcg10"] for f in figures]
        valid = [f["valid_ndcg10"] for f in figures if f["valid_ndcg10"] is not None]
        gap = statistics.mean(valid) - statistics.mean(test) if valid else float("nan")
        diffs = [f["vs_default"] for f in figures if f["vs_default"]]
        if diffs:
            clear = sum(1 for d in diffs if d["ci95"][0] > 0 or d["ci95"][1] < 0)
            versus = f"{statistics.mean(d['difference'] for d in diffs):+.4f} ({clear}/{len(diffs)} clear)"
        else:
            versus = "(the default)"
        print(f"{setting.stem:<20} {mean_sd(test):>18} {mean_sd([f['test_ndcg10_masked'] for f in figures]):>18} "
              f"{mean_sd(valid) if valid else '-':>18} {gap:>+8.4f} {versus:>34} "
              f"{statistics.mean(f['cpu_minutes'] for f in figures):>8.1f}")
        for f in figures:
            d = f["vs_default"]
            interval = f" {d['difference']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" if d else ""
            print(f"    seed {f['seed']}: test {f['test_ndcg10']:.4f}, valid {f['valid_ndcg10']}, "
                  f"epoch {f['best_epoch']}{interval}")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
