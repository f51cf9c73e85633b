#!/usr/bin/env python3
"""Table of the runtime scan benchmark (benches/runtime.rs) from criterion's files of the last run.

    cargo bench --bench runtime && python3 bench/runtime-table.py [target/criterion]

Per group (int8-d64, f16-d64, int8-d256) and shard size: ns per item of `top10` (our scan + top-10),
`bound` (summing the same bytes) and `scalar` (the straightforward loop), by criterion's median
(median over samples of the per-iteration time) and by the fastest sample (the least disturbed by
other work on a shared machine), and the two ratios the targets name: top10 / bound (target ≤ 2) and
scalar / top10 (target ≥ 5). Then the session group: the sequence tower per update and the
whole update → top-10 with explanations, in µs.
"""
import json
import os
import statistics
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"


def per_iteration(group, bench, size):
    path = os.path.join(root, group, bench, str(size), "new", "sample.json")
    if not os.path.exists(path):
        return None
    sample = json.load(open(path))
    times = [t / i for t, i in zip(sample["times"], sample["iters"])]  # ns per pass
    return statistics.median(times), min(times)


rows = []
for group in sorted(os.listdir(root)):
    if not (group.startswith("int8-") or group.startswith("f16-")):
        continue
    sizes = sorted(int(s) for s in os.listdir(os.path.join(root, group, "top10")) if s.isdigit())
    for size in sizes:
        got = {b: per_iteration(group, b, size) for b in ("top10", "bound", "scalar")}
        if None in got.values():
            continue
        for which, index in (("median", 0), ("fastest", 1)):
            top, bound, scalar = (got[b][index] / size for b in ("top10", "bound", "scalar"))
            rows.append((group, size, which, top, bound, scalar, top / bound, scalar / top))

print("| shard | items | statistic | top-10 ns/item | bound ns/item | scalar ns/item | top-10 / bound | scalar / top-10 |")
print("|---|---:|---|---:|---:|---:|---:|---:|")
for group, size, which, top, bound, scalar, r1, r2 in rows:
    print(f"| {group} | {size:,} | {which} | {top:.3f} | {bound:.3f} | {scalar:.2f} | {r1:.2f} | {r2:.1f} |")

# The session group: latency per update (µs), median and fastest sample.
session = os.path.join(root, "session")
if os.path.isdir(session):
    print()
    print("| what | session items | median µs | fastest µs |")
    print("|---|---:|---:|---:|")
    for bench in sorted(os.listdir(session)):
        if bench == "report":
            continue
        for size in sorted((s for s in os.listdir(os.path.join(session, bench)) if s.isdigit()), key=int):
            got = per_iteration("session", bench, size)
            if got:
                print(f"| {bench} | {size} | {got[0] / 1000:.1f} | {got[1] / 1000:.1f} |")
