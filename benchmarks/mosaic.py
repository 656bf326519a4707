"""Does a page of the picture's own characters read better than the crop as the second view?

A *mosaic* (`trainer.mosaic`) lays up to 3 × 3 of the characters that `trainer.characters` finds out as a page of
the input size on the picture's paper colour, so that the page's own layout stops being a cue: one network pass,
like the crop it would replace. Per set of `views.pictures` this prints the accuracy of today's policy (the whole
image averaged with the crop, or with the tiling where the framing detector says a few characters), the mosaic in
place of that second view wherever a character is found, the same only where the gate lets it in (a picture the
detector calls a page, with at least `MIN_CHARACTERS` found whose sizes agree as a page's do: `MAX_SPREAD`), the
mosaic as a third view, and the share the gate lets in. Raw probabilities are averaged, then read with the
model's temperature and class prior, as the runtime reads them. The rules it answered to were fixed before
their results (docs/experiments.md, sessions 11 and 12). Run:

    .venv/bin/python benchmarks/mosaic.py --model model_store/default_model --data ../shared/data/calligraphy-3
"""

from __future__ import annotations

import time

import numpy as np
from views import accuracies, arguments, print_results, scored_sets

from model_store.images import decode_image
from model_store.preprocess import to_tensor
from model_store.runtime import Classifier
from trainer.characters import Box, character_boxes
from trainer.mosaic import MIN_CHARACTERS, mosaic

# Coefficient of variation of the boxes' longer sides: at most the 90th percentile over the training pages with at
# least MIN_CHARACTERS boxes (docs/experiments.md, session 12). Larger spreads are radicals of one character, a
# mount's flat colour, or characters cut by a fan's ellipse or a crop's edge.
MAX_SPREAD = 0.14


def size_spread(boxes: list[Box]) -> float:
    """The coefficient of variation of the boxes' longer sides: near 0 for a page's characters."""
    sides = np.array([max(right - left, bottom - top) for left, top, right, bottom in boxes], dtype=np.float64)
    return float(sides.std() / sides.mean())


def mosaic_views(classifier: Classifier, blob: bytes) -> tuple[np.ndarray, bool]:
    """Raw probabilities [3, classes] of the whole image, the runtime's second view (the tiling where the framing
    detector says a few characters, else the crop) and the mosaic (a copy of that second view where no character
    is found), and whether the gate lets the mosaic in: the detector calls the picture a page and at least
    `MIN_CHARACTERS` are found, of sizes within `MAX_SPREAD`."""
    img = decode_image(blob, max_side=classifier.decode_side)
    few = classifier.shows_few_characters(img)
    second = classifier.second_views(img, few)
    boxes = character_boxes(img)
    view = [mosaic(img, boxes, classifier.preprocessing.size)] if boxes else second
    batch = np.stack([to_tensor(v, classifier.preprocessing) for v in (img, *second, *view)])
    return classifier.run(batch), not few and len(boxes) >= MIN_CHARACTERS and size_spread(boxes) <= MAX_SPREAD


def policies(probs: np.ndarray, gated: np.ndarray) -> dict[str, np.ndarray]:
    """[N, views, classes] -> the runtime's average, the mosaic in place of its second view wherever a character is
    found and only where the gate lets it in, and the mosaic as a third view."""
    whole, second, tiles = probs[:, 0], probs[:, 1], probs[:, 2]
    return {
        "before": (whole + second) / 2,
        "mosaic": (whole + tiles) / 2,
        "gated mosaic": (whole + np.where(gated[:, None], tiles, second)) / 2,
        "three views": (whole + second + tiles) / 3,
    }


def main() -> None:
    args = arguments(__doc__)
    started = time.perf_counter()
    results = {str(m): accuracies(*scored_sets(m, args, mosaic_views), policies, "gated") for m in args.model}
    print_results(results, args.seed, time.perf_counter() - started, width=13, means=True)


if __name__ == "__main__":
    main()
