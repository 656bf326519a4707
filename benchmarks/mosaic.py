"""Does a page of the picture's own characters read better than the crop as the second view?

The packaged model calls light-on-dark clerical rubbings regular script with the page in view, while the same
characters cut out one by one are read as clerical (docs/experiments.md, session 11). A *mosaic* puts up to 3 × 3
of the characters that `trainer.characters.character_boxes` finds into a 3 × 3 page, each centred in its cell on
the picture's paper colour, in reading order (spread evenly when there are more, repeated when fewer): one network
pass, like the crop it would replace. Per set of `views.pictures` this prints the accuracy of the runtime's policy
(the whole image averaged with the crop, or with the tiling where the framing detector says a few characters),
the mosaic in place of that second view wherever a character is found, the same only where the gate lets it in
(a picture the detector calls a page, with at least `MIN_CHARACTERS` found), the mosaic as a third view, and the
share the gate lets in. Raw probabilities are averaged (a temperature does not change which style wins). The
rules it answers to were fixed before its results (docs/experiments.md, session 11). Run:

    .venv/bin/python benchmarks/mosaic.py --model model_store/default_model --data ../shared/data/calligraphy-3
"""

from __future__ import annotations

import json
import time

import numpy as np
from PIL import Image
from views import arguments, scored_sets

from model_store.images import decode_image
from model_store.preprocess import to_tensor
from model_store.runtime import Classifier
from trainer.characters import character_boxes, ink_mask

GRID = 3
MIN_CHARACTERS = 4  # fewer distinct characters make the mosaic mostly repeats: the tiling pages lose with
MARGIN = 0.1  # of a character box's longer side, kept around it in its cell


def paper_colour(img: Image.Image) -> tuple[int, ...]:
    """The median RGB of the pixels that are not ink: the background a cut-out character sits on."""
    pixels = np.asarray(img)[~ink_mask(img)]
    return tuple(int(v) for v in np.median(pixels, axis=0)) if len(pixels) else (255, 255, 255)


def mosaic(img: Image.Image, boxes: list[tuple[int, int, int, int]], n: int) -> Image.Image:
    """n × n square cells, each holding one character of `boxes` (with a margin) centred at its own aspect."""
    picks = [boxes[round(i)] for i in np.linspace(0, len(boxes) - 1, n * n)] if len(boxes) > n * n else boxes
    cells = [picks[i % len(picks)] for i in range(n * n)]
    side = max(round(max(r - left, b - t) * (1 + 2 * MARGIN)) for left, t, r, b in cells)
    canvas = Image.new("RGB", (side * n, side * n), paper_colour(img))
    for i, (left, top, right, bottom) in enumerate(cells):
        pad = round(MARGIN * max(right - left, bottom - top))
        box = (max(0, left - pad), max(0, top - pad), min(img.width, right + pad), min(img.height, bottom + pad))
        char = img.crop(box)
        scale = side / max(char.size)
        char = char.resize((max(1, round(char.width * scale)), max(1, round(char.height * scale))), Image.BILINEAR)
        row, col = divmod(i, n)
        canvas.paste(char, (col * side + (side - char.width) // 2, row * side + (side - char.height) // 2))
    return canvas


def mosaic_views(classifier: Classifier, blob: bytes) -> tuple[np.ndarray, bool]:
    """Raw probabilities [4, classes] of the whole image, the runtime's second view and the 3 × 3 mosaic (a copy
    of the second view where no character is found), and whether the gate lets the mosaic in: the framing
    detector calls the picture a page and the finder returns at least `MIN_CHARACTERS`."""
    img = decode_image(blob, max_side=classifier.decode_side)
    few = classifier.shows_few_characters(img)
    second = classifier.second_views(img, few)
    boxes = character_boxes(img)
    view = [mosaic(img, boxes, GRID)] if boxes else second
    batch = np.stack([to_tensor(v, classifier.preprocessing) for v in [img, *second, *view]])
    return classifier.run(batch), not few and len(boxes) >= MIN_CHARACTERS


def policies(probs: np.ndarray, gated: np.ndarray) -> dict[str, np.ndarray]:
    """[N, views, classes] -> the runtime's average, the mosaic in place of its second view wherever a character
    is found and only where the gate lets it in, and the mosaic as a third view."""
    whole, second, tiles = probs[:, 0], probs[:, 1], probs[:, 2]
    return {
        "runtime": (whole + second) / 2,
        "mosaic": (whole + tiles) / 2,
        "gated mosaic": (whole + np.where(gated[:, None], tiles, second)) / 2,
        "three views": (whole + second + tiles) / 3,
    }


def main() -> None:
    args = arguments(__doc__)
    started = time.perf_counter()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for model_dir in args.model:
        _, sets = scored_sets(model_dir, args, mosaic_views)
        results[str(model_dir)] = {
            name: {policy: float((p.argmax(1) == targets).mean()) for policy, p in policies(probs, gated).items()}
            | {"gated": float(gated.mean())}
            for name, (probs, gated, targets) in sets.items()
        }
    for model_dir, rows in results.items():
        print(f"{model_dir}, seed {args.seed}")
        names = list(next(iter(rows.values())))
        print(f"  {'':<48}" + "".join(f"{n:>13}" for n in names))
        for condition, row in rows.items():
            print(f"  {condition:<48}" + "".join(f"{row[n]:>13.3f}" for n in names))
        copies = [r for c, r in rows.items() if c != "page" and "one character," not in c]
        fonts = [r for c, r in rows.items() if "one character," in c]
        for label, group in (("mean of the copies", copies), ("mean of the font sets", fonts)):
            print(f"  {label:<48}" + "".join(f"{np.mean([r[n] for r in group]):>13.3f}" for n in names))
    seconds = time.perf_counter() - started
    print(json.dumps({"seed": args.seed, "seconds": round(seconds, 1), "models": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
