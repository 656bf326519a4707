"""Does the model still work on what users photograph? Accuracy and confidence under realistic changes.

Every validation image of the model's grouped split (`dataset.valid_files` in `model.json`) is decoded, copied
under each condition of `trainer.photo_copies` (rubbing-like inversion, grey, a tilted phone shot, yellowed
paper, uneven light, one character, a few characters or a quarter of the page, a phone-quality copy, a round
fan, margins of a mount around the page), re-encoded as JPEG quality 90 and classified with
`Classifier.predict(bytes)`, as the bot would. Random parameters come from `--seed`, the condition and the file
name, so several `--model`s see identical inputs (and the same copies as the trainer's calibration with that
seed). `original` is re-encoded too, so it may differ by an image or two from the figures on the stored files. Run:

    .venv/bin/python benchmarks/robustness.py --model runs/v1 [--model runs/v2] --data ../shared/data/calligraphy-3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from model_store.images import decode_image
from model_store.runtime import Classifier
from trainer.calibrate import reliability
from trainer.photo_copies import CONDITIONS, JPEG_QUALITY, photo_copies
from trainer.report import classification_metrics


def shared_valid_files(model_dirs: list[Path]) -> list[str]:
    """The validation files every model holds out, in the first model's order; says so when they differ."""
    lists = [json.loads((d / "model.json").read_text())["dataset"]["valid_files"] for d in model_dirs]
    common = set(lists[0]).intersection(*lists[1:])
    if any(set(files) != common for files in lists):
        sizes = ", ".join(f"{d}: {len(files)}" for d, files in zip(model_dirs, lists, strict=True))
        print(f"note: the models' validation files differ ({sizes}); using the {len(common)} they share")
    return [f for f in lists[0] if f in common]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True, help="version directory; repeatable")
    parser.add_argument("--data", type=Path, required=True, help="the dataset the models were trained on")
    parser.add_argument("--seed", type=int, default=0, help="seed for the conditions' random parameters")
    parser.add_argument("--limit", type=int, help="at most N images, spread evenly over the split")
    args = parser.parse_args()

    started = time.perf_counter()
    files = shared_valid_files(args.model)
    if args.limit:
        files = files[:: max(1, len(files) // args.limit)][: args.limit]
    classifiers = [Classifier(d) for d in args.model]
    probs: dict[tuple[int, str], list[list[float]]] = {
        (m, name): [] for m in range(len(classifiers)) for name in CONDITIONS
    }
    for file in files:
        page = decode_image((args.data / file).read_bytes())
        for name, blob in photo_copies(page, file, args.seed).items():
            for m, classifier in enumerate(classifiers):
                probs[m, name].append(list(classifier.predict(blob).probs.values()))

    results: dict[str, dict[str, dict]] = {}
    for m, (model_dir, classifier) in enumerate(zip(args.model, classifiers, strict=True)):
        targets = np.array([classifier.classes.index(f.split("/")[0]) for f in files])
        results[str(model_dir)] = {}
        for name in CONDITIONS:
            p = np.array(probs[m, name])
            metrics = classification_metrics(p, targets, classifier.classes)
            results[str(model_dir)][name] = {
                "accuracy": metrics["accuracy"],
                "mean_confidence": float(p.max(axis=1).mean()),
                "ece": reliability(p, targets)[0],
                "recall": {c: v["recall"] for c, v in metrics["per_class"].items()},
            }

    print(f"{len(files)} validation images of {args.data}, seed {args.seed}, JPEG quality {JPEG_QUALITY}")
    for m, model_dir in enumerate(args.model):
        print(f"  [{m + 1}] {model_dir}")
    print(f"{'':<15}" + "".join(f"  {f'[{m + 1}] acc':>8} {'conf':>5} {'ECE':>5}" for m in range(len(args.model))))
    for name in CONDITIONS:
        cells = (results[str(d)][name] for d in args.model)
        print(
            f"{name:<15}"
            + "".join(f"  {r['accuracy']:>8.3f} {r['mean_confidence']:>5.3f} {r['ece']:>5.3f}" for r in cells)
        )
    seconds = time.perf_counter() - started
    print(json.dumps({"n": len(files), "seed": args.seed, "seconds": round(seconds, 1), "models": results}))


if __name__ == "__main__":
    main()
