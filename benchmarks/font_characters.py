"""Regular script the model has never seen: single characters and 2x2 blocks rendered from regular-script fonts.

The seed data is scraped pages; users photograph one character or a few, from works of other sources. A
regular-script (楷书) font is such a source: a typeface, not a brush, so this is a one-class check (how often the
model says kaishu, and how sure), not an accuracy over the three styles. No clerical or seal-script font is
packaged for Debian, so the other two classes have no such check. Each character is drawn as ink on paper and as
a rubbing (light on dark), with a random tint, size and offset from `--seed`, saved as JPEG quality 90 and
classified with `Classifier.predict(bytes)`, as the bot would. The default font is AR PL UKai (Debian's
`fonts-arphic-ukai`); `--font` names others, e.g. Arphic's KaitiM GB (`fonts-arphic-gkai00mp`,
/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf) or Taiwan's standard regular script TW-Kai
(`fonts-cns11643-kai`, /usr/share/fonts/truetype/cns11643/TW-Kai-98_1.ttf). Run:

    .venv/bin/python benchmarks/font_characters.py --model model_store/default_model [--model runs/v2] [--font F]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont, ImageOps

from model_store.runtime import Classifier
from sandbox.make_samples import UKAI
from trainer.photo_copies import jpeg

STYLE = "kaishu"
# 144 common characters (36 blocks of four), from simple to dense.
TEXT = (
    "一人大天中上下山水火木日月不子之也而其于以为有无生年出我心手文书学道言风雨春秋花草石田王国家行自得来"
    "去见长高明光东西南北开门问间时事物重新老远近多少前后左右白黑青红金玉马鸟鱼龙云雪海河江湖林森竹兰"
    "梅松思想意情爱忠孝仁义礼智信德善美真和平安静清正直画诗词歌读写观听说语声音乐舞飞走游登临望归"
)
LAYOUTS = {"one character": 1, "2x2 block": 2}
SIZE = 320


def render(font_path: Path, chars: str, per_side: int, rubbing: bool, rng: random.Random) -> Image.Image:
    """`chars` (per_side² of them) in a square on paper of a random tint, or as a light-on-dark rubbing."""
    base = rng.randint(215, 250)
    img = Image.new("RGB", (SIZE, SIZE), (base, base - rng.randint(0, 12), base - rng.randint(0, 30)))
    draw = ImageDraw.Draw(img)
    cell = SIZE / per_side
    font = ImageFont.truetype(str(font_path), round(cell * rng.uniform(0.6, 0.8)))
    for i, char in enumerate(chars):
        x = (i // per_side + 0.5) * cell + rng.uniform(-0.05, 0.05) * cell
        y = (i % per_side + 0.5) * cell + rng.uniform(-0.05, 0.05) * cell
        draw.text((SIZE - x, y), char, font=font, fill=(rng.randint(10, 40),) * 3, anchor="mm")
    return ImageOps.invert(img) if rubbing else img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True, help="version directory; repeatable")
    parser.add_argument("--font", type=Path, action="append", help=f"regular-script font; repeatable (default {UKAI})")
    parser.add_argument("--seed", type=int, default=0, help="seed for tints, sizes and offsets")
    parser.add_argument("--crops", type=int, help="inference crops instead of the model's own (0: whole image only)")
    args = parser.parse_args()
    fonts = args.font or [UKAI]
    for font in fonts:
        if not font.is_file():
            parser.error(f"{font} is missing (AR PL UKai: install Debian's fonts-arphic-ukai)")
        missing = [char for char in TEXT if ord(char) not in TTFont(font, fontNumber=0).getBestCmap()]
        if missing:
            parser.error(f"{font} lacks {len(missing)} of the characters, e.g. {''.join(missing[:8])}")

    started = time.perf_counter()
    images: dict[str, list[bytes]] = {}
    for font in fonts:
        rng = random.Random(args.seed)
        for layout, per_side in LAYOUTS.items():
            chunks = [TEXT[i : i + per_side**2] for i in range(0, len(TEXT) - per_side**2 + 1, per_side**2)]
            for rubbing in (False, True):
                name = f"{font.stem}, {layout}, {'rubbing' if rubbing else 'ink on paper'}"
                images[name] = [jpeg(render(font, chunk, per_side, rubbing, rng)) for chunk in chunks]

    results: dict[str, dict[str, dict]] = {}
    for model_dir in args.model:
        classifier = Classifier(model_dir) if args.crops is None else Classifier(model_dir, crops=args.crops)
        results[str(model_dir)] = {}
        for name, blobs in images.items():
            predictions = [classifier.predict(blob) for blob in blobs]
            results[str(model_dir)][name] = {
                "n": len(blobs),
                "kaishu": sum(p.label == STYLE for p in predictions) / len(predictions),
                "mean_p_kaishu": sum(p.probs[STYLE] for p in predictions) / len(predictions),
                "answers": dict(Counter(p.label for p in predictions).most_common()),
            }

    print(f"regular-script fonts, seed {args.seed}: share called {STYLE} / mean probability of {STYLE} / answers")
    for model_dir in args.model:
        print(f"  {model_dir}")
        for name, r in results[str(model_dir)].items():
            answers = ", ".join(f"{label} {n}" for label, n in r["answers"].items())
            print(f"    {name:<44} n={r['n']:<4} {r['kaishu']:.3f} / {r['mean_p_kaishu']:.3f} / {answers}")
    seconds = time.perf_counter() - started
    print(json.dumps({"seed": args.seed, "seconds": round(seconds, 1), "models": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
