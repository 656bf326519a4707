"""Which second view helps which picture? The whole image plus the crop, or plus the image tiled into a page.

The model learned from pages of many characters; a photo of one character is far from that. Tiling the picture
n × n (`model_store.framing.tiled`) turns one character into a page of it, at a character size the model has seen.
Per photo condition of `trainer.photo_copies` (`--seed` as in `benchmarks/robustness.py`; `page` is the stored
file), this compares the whole image alone and averaged with one second view: the crop, a 2 × 2 or a 3 × 3 tiling,
and the runtime's choice (`framing`: the tiling where the model's framing detector says a few characters, else the
crop; models without a detector always crop). The regular-script fonts' single characters of
`benchmarks/font_characters.py` are scored as the share called kaishu. Raw probabilities are averaged (a
temperature does not change which style wins). Run:

    .venv/bin/python benchmarks/views.py --model model_store/default_model --data ../shared/data/calligraphy-3
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
from font_characters import TEXT, render

from model_store.framing import tiled
from model_store.images import decode_image
from model_store.preprocess import to_tensor
from model_store.runtime import Classifier
from sandbox.make_samples import UKAI
from trainer.photo_copies import jpeg, photo_copies
from trainer.report import classification_metrics

TILES = (2, 3)
SECOND_VIEWS = ("crop", *(f"{n}x{n} tiles" for n in TILES))


def view_probs(classifier: Classifier, blob: bytes) -> tuple[np.ndarray, bool]:
    """Raw probabilities [4, classes] of the whole image, its crop and its 2 × 2 and 3 × 3 tilings, and whether the
    model's framing detector calls the picture a few characters."""
    img = decode_image(blob, max_side=classifier.decode_side)
    whole_and_crop = classifier.views(img)
    tiles = [to_tensor(tiled(img, n), classifier.preprocessing) for n in TILES]
    few = classifier.framing is not None and bool(classifier.framing.few_characters(classifier.features(img)[None])[0])
    return classifier.run(np.concatenate([whole_and_crop, np.stack(tiles)])), few


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True, help="version directory; repeatable")
    parser.add_argument("--data", type=Path, required=True, help="the dataset the models were trained on")
    parser.add_argument("--seed", type=int, default=0, help="seed for the copies' and fonts' random parameters")
    parser.add_argument("--font", type=Path, action="append", help=f"regular-script font; repeatable (default {UKAI})")
    args = parser.parse_args()

    started = time.perf_counter()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for model_dir in args.model:
        classifier = Classifier(model_dir, crops=1)
        metadata = json.loads((model_dir / "model.json").read_text())
        files, classes = metadata["dataset"]["valid_files"], classifier.classes
        targets = np.array([classes.index(f.split("/")[0]) for f in files])
        tiles = classifier.framing.tiles if classifier.framing else TILES[-1]
        per_condition: dict[str, list[tuple[np.ndarray, bool]]] = {}
        for file in files:
            stored = (args.data / file).read_bytes()
            copies = {"page": stored} | photo_copies(decode_image(stored), file, args.seed)
            copies.pop("original")
            for name, blob in copies.items():
                per_condition.setdefault(name, []).append(view_probs(classifier, blob))
        rows = {}
        for name, views in per_condition.items():
            probs, few = np.array([v[0] for v in views]), np.array([v[1] for v in views])
            rows[name] = {
                policy: classification_metrics(p, targets, classes)["accuracy"]
                for policy, p in policies(probs, few, tiles).items()
            } | {"flagged": float(few.mean())}
        kaishu = classes.index("kaishu")
        for font in args.font or [UKAI]:
            rng = random.Random(args.seed)
            for rubbing in (False, True):
                views = [view_probs(classifier, jpeg(render(font, char, 1, rubbing, rng))) for char in TEXT]
                probs, few = np.array([v[0] for v in views]), np.array([v[1] for v in views])
                name = f"{font.stem}, one character, {'rubbing' if rubbing else 'ink'} (share kaishu)"
                rows[name] = {
                    policy: float((p.argmax(1) == kaishu).mean()) for policy, p in policies(probs, few, tiles).items()
                } | {"flagged": float(few.mean())}
        results[str(model_dir)] = rows

    for model_dir, rows in results.items():
        print(f"{model_dir}, seed {args.seed}")
        names = list(next(iter(rows.values())))
        print(f"  {'':<48}" + "".join(f"{n:>12}" for n in names))
        for condition, row in rows.items():
            print(f"  {condition:<48}" + "".join(f"{row[n]:>12.3f}" for n in names))
    seconds = time.perf_counter() - started
    print(json.dumps({"seed": args.seed, "seconds": round(seconds, 1), "models": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
