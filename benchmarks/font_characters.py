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

from model_store.runtime import Classifier
from sandbox.make_samples import UKAI
from trainer.photo_copies import jpeg
from trainer.typeface import HELD_OUT, missing_characters, render

STYLE = "kaishu"
LAYOUTS = {"one character": 1, "2x2 block": 2}


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
        missing = missing_characters(font, HELD_OUT)
        if missing:
            parser.error(f"{font} lacks {len(missing)} of the characters, e.g. {missing[:8]}")

    started = time.perf_counter()
    images: dict[str, list[bytes]] = {}
    for font in fonts:
        rng = random.Random(args.seed)
        for layout, per_side in LAYOUTS.items():
            chunks = [HELD_OUT[i : i + per_side**2] for i in range(0, len(HELD_OUT) - per_side**2 + 1, per_side**2)]
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
