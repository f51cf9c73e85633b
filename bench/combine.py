"""Prints the encoder benchmark tables: items/s ours (criterion) vs PyTorch (pytorch_reference.py).

Ours: `target/criterion/{text,image}/{f32,q8_0}/batch{1,32}/new/` — `estimates.json` (median ns per
pass), `sample.json` (every sample, for the fastest pass) and `benchmark.json` (items per pass).
PyTorch: the JSON written by pytorch_reference.py, at its better thread count. PyTorch has no Q8_0
model, so both of our columns are divided by PyTorch f32.

Two tables: the median pass, and the fastest pass. On a machine that other work loads, the median
says what a run gets; the fastest pass is the closer estimate of each side's own speed.

Usage: python combine.py <target/criterion> <torch.json>   (standard library only)
"""
import json
import os
import sys

ENCODERS = (("text", "texts/s"), ("image", "images/s"))
BATCHES = ("batch1", "batch32")


def ours(criterion_dir, encoder, precision, batch, statistic):
    """Items/s from criterion's median or fastest sample, or None when that case was not run."""
    case = os.path.join(criterion_dir, encoder, precision, batch, "new")
    try:
        with open(os.path.join(case, "benchmark.json"), encoding="utf-8") as f:
            items = json.load(f)["throughput"]["Elements"]
        if statistic == "median":
            with open(os.path.join(case, "estimates.json"), encoding="utf-8") as f:
                ns = json.load(f)["median"]["point_estimate"]
        else:
            with open(os.path.join(case, "sample.json"), encoding="utf-8") as f:
                sample = json.load(f)
            ns = min(t / n for t, n in zip(sample["times"], sample["iters"]))
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return items / (ns * 1e-9)


def reference(case, statistic):
    """PyTorch's items/s and thread count at its better thread count, or (None, None)."""
    by_threads = case.get("by_threads", {})
    if not by_threads:
        return None, None
    rate = lambda t: case["items"] / (  # noqa: E731
        by_threads[t]["median_s"] if statistic == "median" else min(by_threads[t]["times_s"]))
    best = max(by_threads, key=rate)
    return rate(best), best


def table(criterion_dir, torch, statistic):
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    ratio = lambda a, b: "-" if a is None or b is None else f"{a / b:.2f}x"  # noqa: E731
    header = ["encoder", "batch", "PyTorch f32", "ours f32", "f32 ratio", "ours Q8_0", "Q8_0 ratio"]
    rows = []
    for encoder, unit in ENCODERS:
        if encoder not in torch:
            continue  # not run this time
        for batch in BATCHES:
            rate, threads = reference(torch[encoder].get(batch, {}), statistic)
            f32 = ours(criterion_dir, encoder, "f32", batch, statistic)
            q8 = ours(criterion_dir, encoder, "q8_0", batch, statistic)
            shown = fmt(rate) + (f" ({threads} thr)" if threads else "")
            rows.append([f"{encoder} ({unit})", batch.removeprefix("batch"), shown, fmt(f32),
                         ratio(f32, rate), fmt(q8), ratio(q8, rate)])
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def main():
    criterion_dir, torch_json = sys.argv[1], sys.argv[2]
    with open(torch_json, encoding="utf-8") as f:
        torch = json.load(f)
    print("Median pass:\n")
    print(table(criterion_dir, torch, "median"))
    print("\nFastest pass:\n")
    print(table(criterion_dir, torch, "fastest"))
    clock = "CPU time of the process (items per CPU-second)" if torch.get("clock") == "cpu" else "wall clock"
    print(f"\nClock: {clock}. PyTorch {torch.get('torch')}, {torch.get('reps')} passes per thread count, at the "
          f"better of {torch.get('threads_tried')} threads (thr); ours: criterion's samples, "
          f"{os.environ.get('BENCH_THREADS', 'all')} threads. "
          "Ratio > 1: ours is faster.")


if __name__ == "__main__":
    main()
