"""Small generated image datasets in the folder-per-class layout the trainer reads."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

from trainer.config import TrainConfig

PATTERNS = ("horizontal", "vertical", "dots")


def pattern_image(pattern: str, rng: random.Random, width: int = 72, height: int = 64) -> Image.Image:
    """Black strokes on paper: the class is the stroke pattern, so a tiny net can learn it."""
    img = Image.new("RGB", (width + rng.randint(0, 24), height), (250, 246, 235))
    draw = ImageDraw.Draw(img)
    off = rng.randint(0, 7)
    for k in range(0, 100, 8):
        if pattern == "horizontal":
            draw.line([(0, k + off), (120, k + off)], fill=(20, 20, 20), width=3)
        elif pattern == "vertical":
            draw.line([(k + off, 0), (k + off, 120)], fill=(20, 20, 20), width=3)
        else:
            for j in range(0, height, 10):
                draw.ellipse([k + off, j + off, k + off + 4, j + off + 4], fill=(20, 20, 20))
    return img


def make_dataset(root: Path, per_class: int = 10, classes: tuple[str, ...] = PATTERNS, seed: int = 0) -> Path:
    rng = random.Random(seed)
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pattern_image(cls, rng).save(root / cls / f"{cls}_{i:03d}.png")
    return root


def scribble_image(rng: random.Random, width: int = 160, height: int = 200) -> Image.Image:
    """Irregular brush-like strokes: each call a distinct picture, as pages of calligraphy are."""
    img = Image.new("RGB", (width, height), (rng.randint(200, 255), rng.randint(190, 245), rng.randint(170, 235)))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(6, 14)):
        points = [(rng.randint(0, width), rng.randint(0, height)) for _ in range(rng.randint(2, 4))]
        draw.line(points, fill=(rng.randint(0, 60),) * 3, width=rng.randint(4, 14))
    return img


def tiny_config(data: Path, out: Path, **overrides: object) -> TrainConfig:
    """One frozen epoch of one member at 32 px: seconds on the CPU, enough to export a real Lite0 model."""
    settings: dict = dict(
        sizes=(32,),
        epochs_frozen=1,
        epochs_unfrozen=0,
        members=1,
        finetune_members=0,
        bs=8,
        seed=1,
        valid_pct=0.25,
        exclude=None,
    )
    return TrainConfig(data=data, out=out, **(settings | overrides))
