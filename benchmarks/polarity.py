"""Does ink polarity still steer the model? View policies that show it the picture in the other polarity.

The seed data's rubbings (light strokes on dark stone) are not spread evenly over the styles, so a model can learn
polarity as a style cue: a clerical rubbing called regular script, a regular-script font called so more often as a
rubbing than in ink. Per picture this takes the runtime's two views (the whole image and the second view its
framing detector picks, decided once on the picture as it is) in both polarities, and compares averages of them:

- `runtime`: the whole image and the second view, as the bot answers today;
- `dark ink`: the same, but a picture whose ink is lighter than its paper (`trainer.characters.ink_mask`) is
  inverted first, so the model always sees dark ink on light paper;
- `whole inverted` / `second inverted`: one of the two views in the other polarity;
- `all four`: both views in both polarities, exactly polarity-invariant, at twice the runtime's cost.

The first four cost what the runtime costs now. Inputs are those of `benchmarks/views.py`: the model's grouped
validation pages (`page`), their photo copies (`--seed`), and the regular-script fonts' single characters in ink
and as rubbings, scored as the share called kaishu. Raw probabilities are averaged. Run:

    .venv/bin/python benchmarks/polarity.py --model model_store/default_model --data ../shared/data/calligraphy-3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from views import arguments, scored_sets

from model_store.images import decode_image
from model_store.preprocess import to_tensor
from model_store.runtime import Classifier
from trainer.characters import ink_mask
from trainer.photo_copies import PHOTO_CONDITIONS
from trainer.report import classification_metrics

POLICIES = ("runtime", "dark ink", "whole inverted", "second inverted", "all four")


def light_ink(img: Image.Image) -> bool:
    """Whether the ink (the smaller of Otsu's two sides) is lighter than the paper: a rubbing or a negative."""
    mask = ink_mask(img)
    if mask.all() or not mask.any():
        return False
    grey = np.asarray(img.convert("L"), dtype=np.float64)
    return bool(grey[mask].mean() > grey[~mask].mean())


def polarity_views(classifier: Classifier, blob: bytes) -> tuple[np.ndarray, bool]:
    """Raw probabilities [4, classes] of the whole image, its second view, and both inverted; and `light_ink`."""
    img = decode_image(blob, max_side=classifier.decode_side)
    few = classifier.shows_few_characters(img)
    inverted = ImageOps.invert(img)
    views = [img, *classifier.second_views(img, few), inverted, *classifier.second_views(inverted, few)]
    return classifier.run(np.stack([to_tensor(v, classifier.preprocessing) for v in views])), light_ink(img)


def policies(probs: np.ndarray, light: np.ndarray) -> dict[str, np.ndarray]:
    """[N, 4, classes] views (whole, second, both inverted) -> each policy's mean probabilities [N, classes]."""
    whole, second, whole_inverted, second_inverted = (probs[:, i] for i in range(4))
    runtime, inverted = (whole + second) / 2, (whole_inverted + second_inverted) / 2
    means = (
        runtime,
        np.where(light[:, None], inverted, runtime),
        (whole_inverted + second) / 2,
        (whole + second_inverted) / 2,
        (runtime + inverted) / 2,
    )
    return dict(zip(POLICIES, means, strict=True))


def score(model_dir: Path, args: argparse.Namespace) -> dict[str, dict]:
    """Per policy: accuracy and recall on the pages, the mean over the photo copies and over the font sets, and
    the inverted copies' accuracy."""
    classifier, sets = scored_sets(model_dir, args, polarity_views)
    accuracy: dict[str, dict[str, float]] = {policy: {} for policy in POLICIES}
    recall: dict[str, dict[str, float]] = {}
    for name, (probs, light, targets) in sets.items():
        for policy, mean in policies(probs, light).items():
            metrics = classification_metrics(classifier.calibrated(mean), targets, classifier.classes)
            accuracy[policy][name] = metrics["accuracy"]
            if name == "page":
                recall[policy] = {c: m["recall"] for c, m in metrics["per_class"].items()}
    font_sets = [name for name in sets if name not in PHOTO_CONDITIONS and name != "page"]
    return {
        policy: {
            "pages": acc["page"],
            "recall": recall[policy],
            "copies": float(np.mean([acc[c] for c in PHOTO_CONDITIONS])),
            "fonts": float(np.mean([acc[f] for f in font_sets])),
            "inverted copies": acc["inverted"],
            "sets": acc,
        }
        for policy, acc in accuracy.items()
    }


def main() -> None:
    args = arguments(__doc__)
    started = time.perf_counter()
    results = {str(m): score(m, args) for m in args.model}
    for model_dir, rows in results.items():
        print(f"{model_dir}, seed {args.seed}")
        print(f"  {'':<16}{'pages':>8}  {'recall':<20}{'copies':>8}{'fonts':>8}{'inverted':>10}")
        for policy, row in rows.items():
            recall = " / ".join(f"{r:.3f}" for r in row["recall"].values())
            print(
                f"  {policy:<16}{row['pages']:>8.3f}  {recall:<20}{row['copies']:>8.3f}{row['fonts']:>8.3f}"
                f"{row['inverted copies']:>10.3f}"
            )
    seconds = time.perf_counter() - started
    print(json.dumps({"seed": args.seed, "seconds": round(seconds, 1), "models": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
