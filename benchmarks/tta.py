"""Is multi-crop inference worth its cost? Accuracy, calibration and latency on the model's own validation split.

The validation files are the ones listed in the model's `model.json` (`dataset.valid_files`): the grouped
split the model never trained on. Run:

    .venv/bin/python benchmarks/tta.py --model runs/v1 --data ../shared/data/calligraphy-3 --crops 0,2,3,4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from model_store.runtime import Classifier
from trainer.calibrate import reliability
from trainer.report import classification_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="version directory")
    parser.add_argument("--data", type=Path, required=True, help="the dataset the model was trained on")
    parser.add_argument("--crops", default="0,2,3,4", help="comma-separated crop counts to compare")
    args = parser.parse_args()

    metadata = json.loads((args.model / "model.json").read_text())
    files = metadata["dataset"]["valid_files"]
    classes = metadata["classes"]
    targets = np.array([classes.index(f.split("/")[0]) for f in files])
    blobs = [(args.data / f).read_bytes() for f in files]
    print(f"{args.model}: {len(files)} validation images, {metadata['arch']} at {metadata['input_size']} px")
    print(f"{'crops':>5} {'accuracy':>9} {'ECE':>6}  " + " ".join(f"{c[:9]:>9}" for c in classes) + "  ms/image")
    for crops in (int(c) for c in args.crops.split(",")):
        classifier = Classifier(args.model, crops=crops)
        classifier.predict(blobs[0])
        started = time.perf_counter()
        probs = np.array([list(classifier.predict(b).probs.values()) for b in blobs])
        ms = (time.perf_counter() - started) * 1000 / len(blobs)
        metrics = classification_metrics(probs, targets, classes)
        ece, _ = reliability(probs, targets)
        print(
            f"{crops:>5} {metrics['accuracy']:>9.3f} {ece:>6.3f}  "
            + " ".join(f"{metrics['per_class'][c]['recall']:>9.3f}" for c in classes)
            + f"  {ms:8.1f}"
        )


if __name__ == "__main__":
    main()
