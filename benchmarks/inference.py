"""Inference speed on real photos: our runtime against a bare ONNX Runtime loop and fastai's `learn.predict`.

    .venv/bin/python benchmarks/inference.py --model DIR --images /work/shared/data/calligraphy-3 \
        [--learner DIR/learner.pkl] [--n 100] [--batch 16] [--crops 0 4]

Prints ms per image (p50/p95) for `Classifier.predict` on image bytes (decode + preprocess + run), the same
for a bare loop (plain Pillow decode, then `session.run` on tensors made beforehand), images/s with
`predict_batch`, the cost of multi-crop inference, peak RSS, and, with --learner, fastai's `learn.predict`
on the same images with the ratio and the largest probability difference. fastai is imported only there,
after the runtime's RSS has been read.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime as ort
from PIL import Image

from model_store.images import decode_image
from model_store.preprocess import to_tensor
from model_store.runtime import Classifier


def sample_images(root: Path, n: int) -> list[Path]:
    """`n` files spread evenly over the sorted folder-per-class tree, so every class is represented."""
    files = sorted(p for p in root.glob("*/*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"no images under {root}/<class>/")
    step = max(1, len(files) // n)
    return files[::step][:n]


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """Milliseconds one call took, and what it returned."""
    start = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - start) * 1000, result


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "mean": statistics.fmean(ordered),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_runtime(model: Path, blobs: list[bytes], threads: int) -> dict:
    classifier = Classifier(model, crops=0, threads=threads)
    for data in blobs:  # first pass: allocator, caches and ORT's arenas settle; not measured
        classifier.predict(data)
    ours = [timed(classifier.predict, data)[0] for data in blobs]

    decode_ms, tensors = [], []
    for data in blobs:
        ms, img = timed(lambda d: Image.open(io.BytesIO(d)).convert("RGB"), data)
        decode_ms.append(ms)
        tensors.append(to_tensor(img, classifier.preprocessing)[None])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model / "model.onnx"), options, providers=["CPUExecutionProvider"])
    for tensor in tensors:
        session.run(["probs"], {"image": tensor})
    run_ms = [timed(session.run, ["probs"], {"image": tensor})[0] for tensor in tensors]
    bare = [d + r for d, r in zip(decode_ms, run_ms, strict=True)]
    return {
        "classifier": classifier,
        "ours": summary(ours),
        "bare_decode": summary(decode_ms),
        "bare_run": summary(run_ms),
        "bare_total": summary(bare),
        "overhead_ratio": statistics.fmean(ours) / statistics.fmean(bare),
    }


def bench_batch(classifier: Classifier, blobs: list[bytes], batch: int) -> float:
    """Images per second through predict_batch."""
    classifier.predict_batch(blobs[:batch])
    start = time.perf_counter()
    for i in range(0, len(blobs), batch):
        classifier.predict_batch(blobs[i : i + batch])
    return len(blobs) / (time.perf_counter() - start)


def bench_crops(model: Path, blobs: list[bytes], crops: list[int], threads: int) -> dict[int, dict]:
    result = {}
    for k in crops:
        classifier = Classifier(model, crops=k, threads=threads)
        for data in blobs:
            classifier.predict(data)
        result[k] = summary([timed(classifier.predict, data)[0] for data in blobs])
    return result


def bench_fastai(learner: Path, classifier: Classifier, blobs: list[bytes]) -> dict:
    from fastai.vision.all import load_learner

    learn = load_learner(learner, cpu=True)
    learn.predict(blobs[0])
    ms, diffs, agree = [], [], 0
    for data in blobs:
        elapsed, (label, _, probs) = timed(learn.predict, data)
        ms.append(elapsed)
        theirs = dict(zip(map(str, learn.dls.vocab), probs.numpy().tolist(), strict=True))
        # learn.predict knows nothing of model.json's temperature: compare the model's raw probabilities.
        raw = classifier.run(classifier.views(decode_image(data, max_side=classifier.decode_side)))[0]
        diffs.append(max(abs(theirs[c] - float(p)) for c, p in zip(classifier.classes, raw, strict=True)))
        agree += str(label) == classifier.predict(data).label
    return {"learn_predict": summary(ms), "max_prob_diff": max(diffs), "label_agreement": agree / len(blobs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a model version directory")
    parser.add_argument("--images", type=Path, required=True, help="a folder-per-class image directory")
    parser.add_argument("--learner", type=Path, help="fastai export (learner.pkl) of the same model")
    parser.add_argument("--n", type=int, default=100, help="images for the runtime figures")
    parser.add_argument("--fastai-n", type=int, default=20, help="images for learn.predict (about 1 s each)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--crops", type=int, nargs="*", default=[0, 2, 4])
    args = parser.parse_args()

    files = sample_images(args.images, args.n)
    blobs = [f.read_bytes() for f in files]
    runtime = bench_runtime(args.model, blobs, args.threads)
    classifier = runtime.pop("classifier")
    single_rss = peak_rss_mb()
    report = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {len(blobs)} images",
        "model": str(args.model),
        "input_size": classifier.preprocessing.size,
        **runtime,
        "batch_images_per_s": bench_batch(classifier, blobs, args.batch),
        "crops_ms": bench_crops(args.model, blobs, args.crops, args.threads),
        "single_image_peak_rss_mb": single_rss,
        "runtime_peak_rss_mb": peak_rss_mb(),
    }
    if args.learner:
        fastai = bench_fastai(args.learner, classifier, blobs[: args.fastai_n])
        report |= fastai
        report["speedup_vs_fastai"] = fastai["learn_predict"]["p50"] / runtime["ours"]["p50"]
        report["peak_rss_with_fastai_mb"] = peak_rss_mb()

    def row(name: str, s: dict) -> str:
        return f"{name:<34}{s['p50']:>9.1f}{s['p95']:>9.1f}{s['mean']:>9.1f}"

    print(report["machine"], "·", args.model, f"· {classifier.preprocessing.size} px · {args.threads} thread(s)")
    print(f"{'ms per image':<34}{'p50':>9}{'p95':>9}{'mean':>9}")
    print(row("Classifier.predict (bytes)", runtime["ours"]))
    print(row("bare: Pillow decode", runtime["bare_decode"]))
    print(row("bare: session.run", runtime["bare_run"]))
    print(row("bare: decode + run", runtime["bare_total"]))
    for k, s in report["crops_ms"].items():
        print(row(f"Classifier.predict, crops={k}", s))
    if args.learner:
        print(row("fastai learn.predict", report["learn_predict"]))
    print(f"overhead vs bare loop: {runtime['overhead_ratio']:.2f}× (target ≤ 1.3)")
    print(f"batch of {args.batch}: {report['batch_images_per_s']:.1f} images/s")
    print(f"peak RSS, one image at a time: {single_rss:.0f} MB", end="; ")
    print(f"after batches and crops: {report['runtime_peak_rss_mb']:.0f} MB")
    if args.learner:
        print(f"speed-up over learn.predict (p50): {report['speedup_vs_fastai']:.1f}× (target ≥ 10)")
        agree = report["label_agreement"]
        print(f"fastai vs runtime: max |Δp| {report['max_prob_diff']:.2e}, labels agree {agree:.0%}")
        print(f"peak RSS with fastai loaded: {report['peak_rss_with_fastai_mb']:.0f} MB")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
