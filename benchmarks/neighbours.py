"""Does the memory of training images (`model_store.neighbours`) read pictures better than the head alone?

Per set of `views.pictures` (the validation pages, their photo copies, the fonts' single characters) this prints
the accuracy of the runtime's views averaged without the memory (`before`: what `benchmarks/mosaic.py` calls
`before`) and blended with its neighbours' votes (`memory`: what `Classifier.predict` does for a model that has
one), and the share of pictures whose answer the memory changes. The model needs a memory (`calligraphy calibrate
--neighbours`). Raw probabilities (a temperature does not change which style wins). The rule it answers to was
fixed before its results (docs/experiments.md, session 16). Run:

    .venv/bin/python benchmarks/neighbours.py --model runs/r44m --data ../shared/data/calligraphy-3
"""

from __future__ import annotations

import time

import numpy as np
from views import accuracies, arguments, print_results, scored_sets

from model_store.images import decode_image, to_rgb
from model_store.runtime import Classifier


def memory_views(classifier: Classifier, blob: bytes) -> tuple[np.ndarray, bool]:
    """Raw probabilities [2, classes]: the runtime's views averaged, then blended with the memory's votes; and
    whether the two disagree."""
    if classifier.neighbours is None:
        raise SystemExit(f"model {classifier.version} has no memory: run `calligraphy calibrate --neighbours` on it")
    img = to_rgb(decode_image(blob, max_side=classifier.decode_side))
    probs, features = classifier.view_outputs([img], features=True)[0]
    before, after = probs.astype(np.float64).mean(axis=0), classifier.combine(probs, features)
    return np.stack([before, after]), bool(before.argmax() != after.argmax())


def policies(probs: np.ndarray, changed: np.ndarray) -> dict[str, np.ndarray]:
    """[N, 2, classes] -> the head alone and with the memory."""
    return {"before": probs[:, 0], "memory": probs[:, 1]}


def main() -> None:
    args = arguments(__doc__)
    started = time.perf_counter()
    results = {str(m): accuracies(scored_sets(m, args, memory_views)[1], policies, "changed") for m in args.model}
    print_results(results, args.seed, time.perf_counter() - started, width=10, means=True)


if __name__ == "__main__":
    main()
