"""Is multi-crop inference worth its cost? Accuracy, calibration and latency on the model's own validation split.

The validation files are the ones listed in the model's `model.json` (`dataset.valid_files`): the grouped
split the model never trained on. Run:

    .venv/bin/python benchmarks/tta.py --model runs/v1 --data ../shared/data/calligraphy-3 --crops 0,2,3,4

`--crop-fractions 0.6,0.75` also varies the most of the long side a crop may take (the runtime's
`CROP_FRACTION`, set for this process only): it changes the crops of near-square images.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from model_store import runtime
from model_store.runtime import Classifier
from trainer.calibrate import reliability
from trainer.report import classification_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="version directory")
    parser.add_argument("--data", type=Path, required=True, help="the dataset the model was trained on")
    parser.add_argument("--crops", default="0,2,3,4", help="comma-separated crop counts to compare")
    parser.add_argument(
        "--crop-fractions",
        default=str(runtime.CROP_FRACTION),
        help="comma-separated shares of the long side a crop may take (default: the runtime's)",
    )
    args = parser.parse_args()

    metadata = json.loads((args.model / "model.json").read_text())
    files = metadata["dataset"]["valid_files"]
    classes = metadata["classes"]
    targets = np.array([classes.index(f.split("/")[0]) for f in files])
    blobs = [(args.data / f).read_bytes() for f in files]
    print(f"{args.model}: {len(files)} validation images, {metadata['arch']} at {metadata['input_size']} px")
    header = f"{'crops':>5} {'share':>5} {'accuracy':>9} {'ECE':>6}  " + " ".join(f"{c[:9]:>9}" for c in classes)
    print(header + "  ms/image")
    for fraction in (float(f) for f in args.crop_fractions.split(",")):
        runtime.CROP_FRACTION = fraction
        for crops in (int(c) for c in args.crops.split(",")):
            classifier = Classifier(args.model, crops=crops)
            classifier.predict(blobs[0])
            started = time.perf_counter()
            probs = np.array([list(classifier.predict(b).probs.values()) for b in blobs])
            ms = (time.perf_counter() - started) * 1000 / len(blobs)
            metrics = classification_metrics(probs, targets, classes)
            ece, _ = reliability(probs, targets)
            print(
                f"{crops:>5} {fraction:>5.2f} {metrics['accuracy']:>9.3f} {ece:>6.3f}  "
                + " ".join(f"{metrics['per_class'][c]['recall']:>9.3f}" for c in classes)
                + f"  {ms:8.1f}"
            )


if __name__ == "__main__":
    main()
