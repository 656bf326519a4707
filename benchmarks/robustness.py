"""Does the model still work on what users photograph? Accuracy and confidence under realistic changes.

Every validation image of the model's grouped split (`dataset.valid_files` in `model.json`) is decoded, changed
by each condition below (rubbing-like inversion, grey, a tilted phone shot, yellowed paper, uneven light, a
few characters or a quarter of the page, a phone-quality copy), re-encoded as JPEG quality 90 and classified
with `Classifier.predict(bytes)`, as the bot would. Random parameters come from `--seed`, the condition and
the file name, so several `--model`s see identical inputs. `original` is re-encoded too, so it may differ by an
image or two from the figures on the stored files. Run:

    .venv/bin/python benchmarks/robustness.py --model runs/v1 [--model runs/v2] --data ../shared/data/calligraphy-3
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from model_store.images import decode_image
from model_store.runtime import Classifier
from trainer.calibrate import reliability
from trainer.report import classification_metrics

JPEG_QUALITY = 90
PAPER_TINT = (1.0, 0.9, 0.7)
LIFTED_BLACK = 40
DARKEST_LIGHT = 0.45

Transform = Callable[[Image.Image, random.Random], Image.Image]


def jpeg(img: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """`img` as JPEG bytes: what a phone or Telegram hands the bot."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def border_colour(img: Image.Image) -> tuple[int, ...]:
    """Median colour of the outermost pixels: the paper or stone a tilted photo shows around the page."""
    pixels = np.asarray(img)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return tuple(int(v) for v in np.median(border, axis=0))


def tilted(img: Image.Image, rng: random.Random) -> Image.Image:
    """Rotated by 5–12° either way, the corners filled with the page's own border colour."""
    angle = rng.uniform(5, 12) * rng.choice((-1, 1))
    return img.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=border_colour(img))


def yellowed(img: Image.Image, rng: random.Random) -> Image.Image:
    """Old paper: blacks lifted to grey ink, then tinted toward yellow."""
    pixels = np.asarray(img, dtype=np.float32)
    lifted = LIFTED_BLACK + pixels * (255 - LIFTED_BLACK) / 255
    return Image.fromarray(np.clip(lifted * np.array(PAPER_TINT), 0, 255).astype(np.uint8))


def uneven_light(img: Image.Image, rng: random.Random) -> Image.Image:
    """Light falling off linearly across the page in a random direction, from full to DARKEST_LIGHT."""
    direction = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0 : img.height, 0 : img.width].astype(np.float32)
    along = xs * math.cos(direction) + ys * math.sin(direction)
    along = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    light = 1 - (1 - DARKEST_LIGHT) * along
    pixels = np.asarray(img, dtype=np.float32) * light[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def page_crop(area: float) -> Transform:
    """A random crop of `area` of the page with the page's own proportions: fewer characters, same squish."""

    def crop(img: Image.Image, rng: random.Random) -> Image.Image:
        width = max(1, round(img.width * math.sqrt(area)))
        height = max(1, round(img.height * math.sqrt(area)))
        left, top = rng.randint(0, img.width - width), rng.randint(0, img.height - height)
        return img.crop((left, top, left + width, top + height))

    return crop


def phone_photo(img: Image.Image, rng: random.Random) -> Image.Image:
    """A low-quality copy: 60% of the pixels per side, slightly blurred, saved at JPEG quality 50."""
    small = img.resize((max(1, round(img.width * 0.6)), max(1, round(img.height * 0.6))), Image.Resampling.BILINEAR)
    blurred = small.filter(ImageFilter.GaussianBlur(0.7))
    return decode_image(jpeg(blurred, quality=50))


CONDITIONS: dict[str, Transform] = {
    "original": lambda img, rng: img,
    "inverted": lambda img, rng: ImageOps.invert(img),
    "grey": lambda img, rng: ImageOps.grayscale(img).convert("RGB"),
    "tilted": tilted,
    "yellowed": yellowed,
    "uneven light": uneven_light,
    "few characters": page_crop(1 / 9),
    "quarter page": page_crop(1 / 4),
    "phone photo": phone_photo,
}


def shared_valid_files(model_dirs: list[Path]) -> list[str]:
    """The validation files every model holds out, in the first model's order; says so when they differ."""
    lists = [json.loads((d / "model.json").read_text())["dataset"]["valid_files"] for d in model_dirs]
    common = set(lists[0]).intersection(*lists[1:])
    if any(set(files) != common for files in lists):
        sizes = ", ".join(f"{d}: {len(files)}" for d, files in zip(model_dirs, lists, strict=True))
        print(f"note: the models' validation files differ ({sizes}); using the {len(common)} they share")
    return [f for f in lists[0] if f in common]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True, help="version directory; repeatable")
    parser.add_argument("--data", type=Path, required=True, help="the dataset the models were trained on")
    parser.add_argument("--seed", type=int, default=0, help="seed for the conditions' random parameters")
    parser.add_argument("--limit", type=int, help="at most N images, spread evenly over the split")
    args = parser.parse_args()

    started = time.perf_counter()
    files = shared_valid_files(args.model)
    if args.limit:
        files = files[:: max(1, len(files) // args.limit)][: args.limit]
    classifiers = [Classifier(d) for d in args.model]
    probs: dict[tuple[int, str], list[list[float]]] = {
        (m, name): [] for m in range(len(classifiers)) for name in CONDITIONS
    }
    for file in files:
        page = decode_image((args.data / file).read_bytes())
        for name, transform in CONDITIONS.items():
            blob = jpeg(transform(page, random.Random(f"{args.seed}/{name}/{file}")))
            for m, classifier in enumerate(classifiers):
                probs[m, name].append(list(classifier.predict(blob).probs.values()))

    results: dict[str, dict[str, dict]] = {}
    for m, (model_dir, classifier) in enumerate(zip(args.model, classifiers, strict=True)):
        targets = np.array([classifier.classes.index(f.split("/")[0]) for f in files])
        results[str(model_dir)] = {}
        for name in CONDITIONS:
            p = np.array(probs[m, name])
            metrics = classification_metrics(p, targets, classifier.classes)
            results[str(model_dir)][name] = {
                "accuracy": metrics["accuracy"],
                "mean_confidence": float(p.max(axis=1).mean()),
                "ece": reliability(p, targets)[0],
                "recall": {c: v["recall"] for c, v in metrics["per_class"].items()},
            }

    print(f"{len(files)} validation images of {args.data}, seed {args.seed}, JPEG quality {JPEG_QUALITY}")
    for m, model_dir in enumerate(args.model):
        print(f"  [{m + 1}] {model_dir}")
    print(f"{'':<15}" + "".join(f"  {f'[{m + 1}] acc':>8} {'conf':>5} {'ECE':>5}" for m in range(len(args.model))))
    for name in CONDITIONS:
        cells = (results[str(d)][name] for d in args.model)
        print(
            f"{name:<15}"
            + "".join(f"  {r['accuracy']:>8.3f} {r['mean_confidence']:>5.3f} {r['ece']:>5.3f}" for r in cells)
        )
    seconds = time.perf_counter() - started
    print(json.dumps({"n": len(files), "seed": args.seed, "seconds": round(seconds, 1), "models": results}))


if __name__ == "__main__":
    main()
