#!/usr/bin/env python3
"""Compares the values of two Omakase features files of the same catalogue, row by row.

    python3 scripts/compare-features.py REFERENCE OTHER

For each modality: how many rows are present in each, and over the rows present in both, the largest
|difference| of a value and the smallest cosine between paired rows, against the golden tests'
tolerances (text: 1e-5 per value and cosine >= 0.99999, tests/text_encoder_golden.rs; image: 1e-4 per
value, tests/image_encoder_golden.rs). Exit status 0 when both files hold the same items with the same
masks and every compared row is within the tolerances, 1 otherwise, 2 when a file cannot be read.

Standard library only (the GPU machine may have no numpy): the safetensors layout is an 8-byte
little-endian header length, a JSON header, then the tensors' raw bytes (docs/run-format.md).
"""

import json
import math
import struct
import sys
from array import array

TOLERANCES = {"text": (1e-5, 0.99999), "image": (1e-4, None)}


def load(path):
    """The header's tensors and metadata, and a function reading one tensor's bytes."""
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    body = data[8 + length :]
    metadata = json.loads(header.pop("__metadata__")["omakase_features"])

    def tensor(name):
        entry = header[name]
        start, end = entry["data_offsets"]
        return entry, body[start:end]

    return metadata, tensor


def f32_rows(tensor, name):
    entry, raw = tensor(name)
    assert entry["dtype"] == "F32", f"{name}: dtype {entry['dtype']}"
    values = array("f")
    values.frombytes(raw)
    if sys.byteorder != "little":
        values.byteswap()
    rows, dim = entry["shape"]
    return [values[i * dim : (i + 1) * dim] for i in range(rows)]


def mask(tensor, name):
    return list(tensor(name)[1])


def compare(reference, other):
    (meta_a, tensor_a), (meta_b, tensor_b) = load(reference), load(other)
    if meta_a["item_ids"] != meta_b["item_ids"]:
        print(f"the files hold different items ({len(meta_a['item_ids'])} and {len(meta_b['item_ids'])})")
        return False
    ok = True
    for modality, (max_diff, min_cosine) in TOLERANCES.items():
        present_a, present_b = mask(tensor_a, f"has_{modality}"), mask(tensor_b, f"has_{modality}")
        both = [i for i, (a, b) in enumerate(zip(present_a, present_b)) if a and b]
        line = f"{modality:6} rows {sum(present_a)} / {sum(present_b)}, compared {len(both)}"
        if present_a != present_b:
            ok = False
            line += " (the masks differ)"
        if not both:
            print(line)
            continue
        rows_a, rows_b = f32_rows(tensor_a, modality), f32_rows(tensor_b, modality)
        worst_diff, worst_cosine = 0.0, 1.0
        for i in both:
            a, b = rows_a[i], rows_b[i]
            worst_diff = max(worst_diff, max(abs(x - y) for x, y in zip(a, b)))
            dot = sum(x * y for x, y in zip(a, b))
            norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
            worst_cosine = min(worst_cosine, dot / norms if norms > 0 else 1.0)
        within = worst_diff <= max_diff and (min_cosine is None or worst_cosine >= min_cosine)
        ok &= within
        tolerance = f"|Δ| <= {max_diff:g}" + (f", cosine >= {min_cosine}" if min_cosine else "")
        line += f": max |Δ| {worst_diff:.3e}, min cosine {worst_cosine:.9f} ({tolerance}: {'within' if within else 'OUTSIDE'})"
        print(line)
    return ok


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        return 0 if compare(sys.argv[1], sys.argv[2]) else 1
    except (OSError, ValueError, KeyError) as err:
        print(f"compare-features: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
