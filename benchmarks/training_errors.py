"""Does the model fit its own training pages? Errors per class on the images it was trained on.

A style whose training pages are misread about as often as its unseen ones is underfit (bias), not overfit: the
levers for it are the ones that let the model fit more. Each training image of the model's split (the dataset's
images outside `dataset.valid_files`, less `dataset.excluded_files`) is read with `Classifier.predict(bytes)`,
the runtime's policy, as a user's photo would be. Prints the errors per class and, with `--list`, each one.
Several `--model`s may be given. Run:

    .venv/bin/python benchmarks/training_errors.py --model model_store/default_model --data ../shared/data/calligraphy-3
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from model_store.runtime import Classifier
from trainer.data import scan_dataset


def training_files(model_dir: Path, data: Path) -> list[str]:
    """The files the model trained on: the dataset less its validation split and its exclusion list."""
    dataset = json.loads((model_dir / "model.json").read_text())["dataset"]
    left_out = set(dataset["valid_files"]) | {entry["file"] for entry in dataset["excluded_files"]}
    return [f for f in scan_dataset(data).relative_files() if f not in left_out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True, help="version directory; repeatable")
    parser.add_argument("--data", type=Path, required=True, help="the dataset the models were trained on")
    parser.add_argument("--list", action="store_true", help="print each misread file with what it was read as")
    args = parser.parse_args()
    for model_dir in args.model:
        classifier = Classifier(model_dir)
        files = training_files(model_dir, args.data)
        totals, wrong = Counter(), Counter()
        for file in files:
            style = file.split("/")[0]
            got = classifier.predict((args.data / file).read_bytes())
            totals[style] += 1
            if got.label != style:
                wrong[style] += 1
                if args.list:
                    print(f"  {file}: read as {got.label} ({got.confidence:.2f})")
        counts = ", ".join(f"{c} {wrong[c]} of {totals[c]} ({wrong[c] / totals[c]:.1%})" for c in sorted(totals))
        print(f"{model_dir}: wrong on training images: {counts}")


if __name__ == "__main__":
    main()
