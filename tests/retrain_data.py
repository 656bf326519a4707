"""Images for the retraining tests: strokes on tinted paper, where the tint decides the class.

The channel-mean test model (tests/model_factory.py) reads red as kaishu, green as lishu, blue as xiaozhuan.
Data tinted the other way round (kaishu blue, lishu red, xiaozhuan green) is what it gets all wrong and a
freshly trained candidate gets partly right; data tinted its way is what it gets all right.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageDraw

RED, GREEN, BLUE = (220, 50, 40), (40, 210, 60), (40, 60, 220)
SERVED_TINTS = {"kaishu": RED, "lishu": GREEN, "xiaozhuan": BLUE}
NEW_TINTS = {"kaishu": BLUE, "lishu": RED, "xiaozhuan": GREEN}


def tinted_page(tint: tuple[int, int, int], rng: random.Random) -> Image.Image:
    """A small page of dark strokes on paper of roughly `tint`: each call a different picture."""
    paper = tuple(max(0, min(255, c + rng.randint(-30, 30))) for c in tint)
    img = Image.new("RGB", (64 + rng.randint(0, 30), 64), paper)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        draw.line([(rng.randint(0, 90), rng.randint(0, 64)) for _ in range(2)], fill=(20, 20, 20), width=3)
    return img


def page_bytes(tint: tuple[int, int, int], seed: int) -> bytes:
    out = io.BytesIO()
    tinted_page(tint, random.Random(seed)).save(out, "PNG")
    return out.getvalue()


def make_tinted_dataset(root: Path, tints: dict[str, tuple[int, int, int]], per_class: int, seed: int) -> Path:
    """`root/<class>/<class>_<seed>_<i>.png`, `per_class` pages per class."""
    rng = random.Random(seed)
    for cls, tint in tints.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            tinted_page(tint, rng).save(root / cls / f"{cls}_{seed}_{i:03d}.png")
    return root
