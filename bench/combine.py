"""Prints the encoder benchmark table: items/s ours (criterion) vs PyTorch (pytorch_reference.py).

Ours: `target/criterion/{text,image}/{f32,q8_0}/batch{1,32}/new/` — `estimates.json` (median ns per
pass) and `benchmark.json` (items per pass). PyTorch: the JSON written by pytorch_reference.py.
PyTorch has no Q8_0 model, so both of our columns are divided by PyTorch f32.

Usage: python combine.py <target/criterion> <torch.json>   (standard library only)
"""
import json
import os
import sys

ENCODERS = (("text", "texts/s"), ("image", "images/s"))
BATCHES = ("batch1", "batch32")


def ours(criterion_dir, encoder, precision, batch):
    """Items/s from criterion's median, or None when that case was not run."""
    case = os.path.join(criterion_dir, encoder, precision, batch, "new")
    try:
        with open(os.path.join(case, "estimates.json"), encoding="utf-8") as f:
            median_ns = json.load(f)["median"]["point_estimate"]
        with open(os.path.join(case, "benchmark.json"), encoding="utf-8") as f:
            items = json.load(f)["throughput"]["Elements"]
    except (OSError, KeyError, TypeError):
        return None
    return items / (median_ns * 1e-9)


def main():
    criterion_dir, torch_json = sys.argv[1], sys.argv[2]
    with open(torch_json, encoding="utf-8") as f:
        torch = json.load(f)
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    ratio = lambda a, b: "-" if a is None or b is None else f"{a / b:.2f}x"  # noqa: E731
    header = ["encoder", "batch", "PyTorch f32", "ours f32", "f32 ratio", "ours Q8_0", "Q8_0 ratio"]
    rows = []
    for encoder, unit in ENCODERS:
        if encoder not in torch:
            continue  # not run this time
        for batch in BATCHES:
            reference = torch.get(encoder, {}).get(batch, {}).get("items_per_s")
            f32 = ours(criterion_dir, encoder, "f32", batch)
            q8 = ours(criterion_dir, encoder, "q8_0", batch)
            rows.append([f"{encoder} ({unit})", batch.removeprefix("batch"), fmt(reference), fmt(f32),
                         ratio(f32, reference), fmt(q8), ratio(q8, reference)])
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print(f"\nPyTorch {torch.get('torch')} with {torch.get('threads')} threads, median of {torch.get('reps')} "
          "passes; ours: criterion median. Ratio > 1: ours is faster.")


if __name__ == "__main__":
    main()
