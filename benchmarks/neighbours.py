"""Does the memory of training images (`model_store.neighbours`) read pictures better than the head alone?

Per set of `views.pictures` (the validation pages, their photo copies, the fonts' single characters) this prints
the accuracy of the runtime's views averaged without the memory (`before`: what `benchmarks/mosaic.py` calls
`before`), blended with its neighbours' votes on every picture (`everywhere`), and blended only where the framing
detector calls the picture a page (`pages`: what `Classifier.predict` does for a model with a memory), and the
share of pictures whose answer `pages` changes. The model needs a memory (`calligraphy calibrate --neighbours`).
Raw probabilities, read with the model's temperature and class prior. The rules it answers to were fixed before
their results (docs/experiments.md, session 16). Run:

    .venv/bin/python benchmarks/neighbours.py --model runs/r44m --data ../shared/data/calligraphy-3
"""

from __future__ import annotations

import time

import numpy as np
from views import accuracies, arguments, print_results, scored_sets

from model_store.images import decode_image, to_rgb
from model_store.runtime import Classifier


def memory_views(classifier: Classifier, blob: bytes) -> tuple[np.ndarray, bool]:
    """Raw probabilities [3, classes]: the runtime's views averaged, blended with the memory's votes everywhere,
    and as the runtime blends them; and whether the runtime's answer differs from the head's."""
    if classifier.neighbours is None:
        raise SystemExit(f"model {classifier.version} has no memory: run `calligraphy calibrate --neighbours` on it")
    img = to_rgb(decode_image(blob, max_side=classifier.decode_side))
    outputs = classifier.view_outputs([img], features=True)[0]
    before = outputs.probs.astype(np.float64).mean(axis=0)
    everywhere = classifier.neighbours.blend(before[None], outputs.features.mean(axis=0)[None])[0]
    runtime = classifier.combine(outputs)
    return np.stack([before, everywhere, runtime]), bool(before.argmax() != runtime.argmax())


def policies(probs: np.ndarray, changed: np.ndarray) -> dict[str, np.ndarray]:
    """[N, 3, classes] -> the head alone, with the memory everywhere, and with it on pages only."""
    return {"before": probs[:, 0], "everywhere": probs[:, 1], "pages": probs[:, 2]}


def main() -> None:
    args = arguments(__doc__)
    started = time.perf_counter()
    results = {str(m): accuracies(*scored_sets(m, args, memory_views), policies, "changed") for m in args.model}
    print_results(results, args.seed, time.perf_counter() - started, width=11, means=True)


if __name__ == "__main__":
    main()
