"""Which second view helps which picture? The whole image plus the crop, or plus the image tiled into a page.

The model learned from pages of many characters; a photo of one character is far from that. Tiling the picture
n × n (`model_store.framing.tiled`) turns one character into a page of it, at a character size the model has seen.
Per photo condition of `trainer.photo_copies` (`--seed` as in `benchmarks/robustness.py`; `page` is the stored
file), this compares the whole image alone and averaged with one second view: the crop, a 2 × 2 or a 3 × 3 tiling,
and the runtime's choice (`framing`: the tiling where the model's framing detector says a few characters, else the
crop; models without a detector always crop). The regular-script fonts' single characters of
`benchmarks/font_characters.py` are scored as the share called kaishu. Raw probabilities are averaged, then
read with the model's temperature and class prior, as the runtime reads them. Run:

    .venv/bin/python benchmarks/views.py --model model_store/default_model --data ../shared/data/calligraphy-3
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from model_store.framing import tiled
from model_store.images import decode_image
from model_store.preprocess import to_tensor
from model_store.runtime import Classifier
from sandbox.make_samples import UKAI
from trainer.photo_copies import ORIGINAL, jpeg, photo_copies
from trainer.typeface import HELD_OUT, render

TILES = (2, 3)
SECOND_VIEWS = ("crop", *(f"{n}x{n} tiles" for n in TILES))


def view_probs(classifier: Classifier, blob: bytes) -> tuple[np.ndarray, bool]:
    """Raw probabilities [4, classes] of the whole image, its crop and its 2 × 2 and 3 × 3 tilings, and whether the
    model's framing detector calls the picture a few characters."""
    img = decode_image(blob, max_side=classifier.decode_side)
    whole_and_crop = classifier.views(img)
    tiles = [to_tensor(tiled(img, n), classifier.preprocessing) for n in TILES]
    return classifier.run(np.concatenate([whole_and_crop, np.stack(tiles)])), classifier.shows_few_characters(img)


def policies(probs: np.ndarray, few: np.ndarray, tiles: int) -> dict[str, np.ndarray]:
    """[N, 4, classes] per-view probabilities -> the whole image alone, averaged with each second view, and
    averaged with the runtime's choice (the `tiles` × `tiles` tiling where `few`, else the crop)."""
    second = {name: probs[:, i + 1] for i, name in enumerate(SECOND_VIEWS)}
    chosen = np.where(few[:, None], probs[:, 2 + TILES.index(tiles)], second["crop"])
    return (
        {"whole": probs[:, 0]}
        | {f"+ {n}": (probs[:, 0] + p) / 2 for n, p in second.items()}
        | {"framing": (probs[:, 0] + chosen) / 2}
    )


def arguments(description: str) -> argparse.Namespace:
    """The options of the benchmarks that score view policies on `pictures` (this one and `polarity.py`)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True, help="version directory; repeatable")
    parser.add_argument("--data", type=Path, required=True, help="the dataset the models were trained on")
    parser.add_argument("--seed", type=int, default=0, help="seed for the copies' and fonts' random parameters")
    parser.add_argument("--font", type=Path, action="append", help=f"regular-script font; repeatable (default {UKAI})")
    return parser.parse_args()


def pictures(data: Path, files: list[str], seed: int, fonts: list[Path]) -> Iterator[tuple[str, str, bytes]]:
    """(set, true style, JPEG bytes) per picture: each stored validation page (`page`), its copy under each photo
    condition of `trainer.photo_copies`, and per font its single characters in ink and as rubbings (regular script,
    so their accuracy is the share called kaishu)."""
    for file in files:
        stored = (data / file).read_bytes()
        style = file.split("/")[0]
        yield "page", style, stored
        copies = photo_copies(decode_image(stored), file, seed)
        yield from ((name, style, blob) for name, blob in copies.items() if name != ORIGINAL)
    for font in fonts:
        rng = random.Random(seed)
        for rubbing in (False, True):
            name = f"{font.stem}, one character, {'rubbing' if rubbing else 'ink'}"
            yield from ((name, "kaishu", jpeg(render(font, char, 1, rubbing, rng))) for char in HELD_OUT)


def scored_sets(
    model_dir: Path, args: argparse.Namespace, views: Callable[[Classifier, bytes], tuple[np.ndarray, bool]]
) -> tuple[Classifier, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The model's classifier (one crop), and per set of `pictures` what `views` gives each picture (view
    probabilities [N, views, classes] and a flag [N]) with the true class indices [N]."""
    classifier = Classifier(model_dir, crops=1)
    files = json.loads((model_dir / "model.json").read_text())["dataset"]["valid_files"]
    grouped: dict[str, tuple[list, list, list]] = {}
    for name, style, blob in pictures(args.data, files, args.seed, args.font or [UKAI]):
        probs, flag = views(classifier, blob)
        entry = grouped.setdefault(name, ([], [], []))
        entry[0].append(probs)
        entry[1].append(flag)
        entry[2].append(classifier.classes.index(style))
    return classifier, {name: (np.array(p), np.array(f), np.array(t)) for name, (p, f, t) in grouped.items()}


def accuracies(
    classifier: Classifier,
    sets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    policies_of: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]],
    flag: str,
) -> dict[str, dict[str, float]]:
    """Per set of `scored_sets`: each policy's accuracy, with the runtime's temperature and class prior applied to
    its averaged probabilities, and the share of pictures flagged (column `flag`)."""
    return {
        name: {
            policy: float((classifier.calibrated(p).argmax(1) == targets).mean())
            for policy, p in policies_of(probs, flags).items()
        }
        | {flag: float(flags.mean())}
        for name, (probs, flags, targets) in sets.items()
    }


def print_results(
    results: dict[str, dict[str, dict[str, float]]], seed: int, seconds: float, width: int = 12, means: bool = False
) -> None:
    """One table per model (a row per set, a column per policy), with `means` the mean of the photo copies and
    of the font sets below it, then everything as one JSON line."""
    for model_dir, rows in results.items():
        print(f"{model_dir}, seed {seed}")
        names = list(next(iter(rows.values())))
        print(f"  {'':<48}" + "".join(f"{n:>{width}}" for n in names))
        for condition, row in rows.items():
            print(f"  {condition:<48}" + "".join(f"{row[n]:>{width}.3f}" for n in names))
        if means:
            copies = [r for c, r in rows.items() if c != "page" and "one character," not in c]
            fonts = [r for c, r in rows.items() if "one character," in c]
            for label, group in (("mean of the copies", copies), ("mean of the font sets", fonts)):
                print(f"  {label:<48}" + "".join(f"{np.mean([r[n] for r in group]):>{width}.3f}" for n in names))
    print(json.dumps({"seed": seed, "seconds": round(seconds, 1), "models": results}, ensure_ascii=False))


def main() -> None:
    args = arguments(__doc__)
    started = time.perf_counter()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for model_dir in args.model:
        classifier, sets = scored_sets(model_dir, args, view_probs)
        tiles = classifier.framing.tiles if classifier.framing else TILES[-1]
        results[str(model_dir)] = accuracies(classifier, sets, functools.partial(policies, tiles=tiles), "flagged")
    print_results(results, args.seed, time.perf_counter() - started)


if __name__ == "__main__":
    main()
