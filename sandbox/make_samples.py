"""Make the sandbox's sample images: regular script rendered from a free font, clerical and seal script drawn.

    .venv/bin/python -m sandbox.make_samples    # needs Debian's fonts-arphic-ukai; rewrites sandbox/samples/*.png

Nothing here comes from the seed dataset. The clerical and small seal samples are drawn stroke by stroke from
the shapes those scripts give a few simple characters (flat and wide with a flaring "swallow tail" for lishu;
tall, symmetric and of even width for xiaozhuan): honest imitations, not the work of a calligrapher.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

OUT = Path(__file__).resolve().parent / "samples"
UKAI = Path("/usr/share/fonts/truetype/arphic/ukai.ttc")
SCALE = 3  # drawn at 3x, then reduced: smooth edges
CHAR = 150  # height of one character box in the final image, pixels
INK = (28, 22, 20)
PAPER = (240, 231, 210)

Point = tuple[float, float]
Profile = Callable[[float], float]
# One stroke: its centre line in the character's unit box (x right, y down) and its width along the line.
Stroke = tuple[list[Point], Profile]


def segment(a: Point, b: Point, n: int = 60) -> list[Point]:
    return [(a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n) for i in range(n + 1)]


def curve(a: Point, c1: Point, c2: Point, b: Point, n: int = 80) -> list[Point]:
    """A cubic Bézier curve from a to b."""
    points = []
    for i in range(n + 1):
        t = i / n
        u = 1 - t
        points.append(
            (
                u**3 * a[0] + 3 * u * u * t * c1[0] + 3 * u * t * t * c2[0] + t**3 * b[0],
                u**3 * a[1] + 3 * u * u * t * c1[1] + 3 * u * t * t * c2[1] + t**3 * b[1],
            )
        )
    return points


def path(*pieces: list[Point]) -> list[Point]:
    return [p for piece in pieces for p in piece]


def rounded_box(x0: float, y0: float, x1: float, y1: float, r: float) -> list[Point]:
    """Left side, top and right side of a box with rounded top corners, drawn as one stroke (seal style)."""
    k = 0.55 * r
    return path(
        segment((x0, y1), (x0, y0 + r)),
        curve((x0, y0 + r), (x0, y0 + r - k), (x0 + r - k, y0), (x0 + r, y0)),
        segment((x0 + r, y0), (x1 - r, y0)),
        curve((x1 - r, y0), (x1 - r + k, y0), (x1, y0 + r - k), (x1, y0 + r)),
        segment((x1, y0 + r), (x1, y1)),
    )


# -- width profiles ---------------------------------------------------------------------------------


def even(t: float) -> float:
    return 1.0


def silkworm(t: float) -> float:
    """Clerical horizontals and verticals: a round, heavier head, an even body."""
    return 1.0 + 0.3 * max(0.0, 1 - t / 0.12)


def swallow_tail(t: float) -> float:
    """The one long wave stroke of a clerical character: heavy head, thin waist, a tail that flares and lifts."""
    head = 0.4 * max(0.0, 1 - t / 0.12)
    body = 1 - 0.25 * math.sin(math.pi * min(t / 0.8, 1.0))
    flare = 0.55 * math.exp(-(((t - 0.85) / 0.08) ** 2))
    taper = 1.0 if t < 0.9 else 1 - (t - 0.9) / 0.1 * 0.8
    return (head + body + flare) * taper


def wave(x0: float, x1: float, y: float, arch: float = 0.025) -> list[Point]:
    """The swallow-tail stroke's line: a slight arch, then a tail that lifts to the right."""
    out = []
    for x, _ in segment((x0, y), (x1, y), 120):
        t = (x - x0) / (x1 - x0)
        dy = -arch * math.sin(math.pi * t / 0.8) if t < 0.8 else -0.08 * ((t - 0.8) / 0.2) ** 2
        out.append((x, y + dy))
    return out


# -- clerical script (lishu): drawn in a box 1.35 times wider than tall ----------------------------

LISHU: dict[str, list[Stroke]] = {
    "大": [
        (segment((0.14, 0.36), (0.86, 0.36)), silkworm),
        (curve((0.5, 0.1), (0.52, 0.5), (0.36, 0.76), (0.14, 0.88)), silkworm),
        (path(curve((0.52, 0.45), (0.6, 0.62), (0.72, 0.8), (0.84, 0.86)), wave(0.84, 0.97, 0.86, 0.0)), swallow_tail),
    ],
    "吉": [
        (wave(0.06, 0.94, 0.14), swallow_tail),
        (segment((0.5, 0.02), (0.5, 0.4)), silkworm),
        (segment((0.3, 0.42), (0.7, 0.42)), silkworm),
        (segment((0.26, 0.56), (0.27, 0.94)), silkworm),
        (path(segment((0.26, 0.56), (0.74, 0.56)), segment((0.74, 0.56), (0.73, 0.94))), silkworm),
        (segment((0.27, 0.91), (0.73, 0.91)), silkworm),
    ],
    "日": [
        (segment((0.2, 0.1), (0.21, 0.9)), silkworm),
        (path(segment((0.2, 0.1), (0.8, 0.1)), segment((0.8, 0.1), (0.79, 0.9))), silkworm),
        (segment((0.21, 0.5), (0.79, 0.5)), silkworm),
        (segment((0.21, 0.87), (0.79, 0.87)), silkworm),
    ],
    "出": [
        (segment((0.5, 0.03), (0.5, 0.93)), silkworm),
        (path(segment((0.24, 0.16), (0.24, 0.47)), segment((0.24, 0.47), (0.76, 0.47))), silkworm),
        (segment((0.76, 0.16), (0.76, 0.47)), silkworm),
        (segment((0.12, 0.58), (0.12, 0.93)), silkworm),
        (segment((0.88, 0.58), (0.88, 0.93)), silkworm),
        (wave(0.06, 0.95, 0.93, 0.0), swallow_tail),
    ],
}

# -- small seal script (xiaozhuan): drawn in a box 1.3 times taller than wide, lines of even width -----

XIAOZHUAN: dict[str, list[Stroke]] = {
    "大": [
        (segment((0.5, 0.04), (0.5, 0.46)), even),
        (curve((0.5, 0.26), (0.3, 0.26), (0.12, 0.34), (0.1, 0.56)), even),
        (curve((0.5, 0.26), (0.7, 0.26), (0.88, 0.34), (0.9, 0.56)), even),
        (curve((0.5, 0.46), (0.44, 0.7), (0.3, 0.86), (0.2, 0.97)), even),
        (curve((0.5, 0.46), (0.56, 0.7), (0.7, 0.86), (0.8, 0.97)), even),
    ],
    "吉": [
        (segment((0.14, 0.12), (0.86, 0.12)), even),
        (segment((0.5, 0.03), (0.5, 0.4)), even),
        (segment((0.26, 0.4), (0.74, 0.4)), even),
        (rounded_box(0.22, 0.53, 0.78, 0.96, 0.1), even),
        (segment((0.22, 0.93), (0.78, 0.93)), even),
    ],
    "山": [
        (
            path(
                segment((0.12, 0.28), (0.12, 0.74)),
                curve((0.12, 0.74), (0.12, 0.88), (0.22, 0.93), (0.34, 0.93)),
                segment((0.34, 0.93), (0.66, 0.93)),
                curve((0.66, 0.93), (0.78, 0.93), (0.88, 0.88), (0.88, 0.74)),
                segment((0.88, 0.74), (0.88, 0.28)),
            ),
            even,
        ),
        (segment((0.5, 0.05), (0.5, 0.93)), even),
    ],
    "中": [
        (rounded_box(0.14, 0.3, 0.86, 0.66, 0.09), even),
        (segment((0.14, 0.63), (0.86, 0.63)), even),
        (segment((0.5, 0.03), (0.5, 0.98)), even),
    ],
}


def stamp(draw: ImageDraw.ImageDraw, points: Sequence[Point], profile: Profile, box: tuple, width: float) -> None:
    """Ink along the line: a disc every pixel or so, as wide as the profile says there (round ends for free)."""
    x, y, w, h = box
    corners = [(x + px * w, y + py * h) for px, py in points]
    pixels = [corners[0]]
    for a, b in itertools.pairwise(corners):
        steps = max(1, math.ceil(math.dist(a, b) / SCALE))
        pixels += [(a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps) for i in range(1, steps + 1)]
    for i, (px, py) in enumerate(pixels):
        r = width * profile(i / max(1, len(pixels) - 1)) / 2
        draw.ellipse((px - r, py - r, px + r, py + r), fill=INK)


def paper(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """Warm paper, a little lighter in the middle, with faint fibres."""
    img = Image.new("RGB", size, PAPER)
    draw = ImageDraw.Draw(img)
    for _ in range(size[0] * size[1] // 4000):
        x, y = rng.uniform(0, size[0]), rng.uniform(0, size[1])
        angle, length = rng.uniform(0, math.pi), rng.uniform(6, 30) * SCALE
        shade = tuple(c - rng.randint(6, 14) for c in PAPER)
        draw.line((x, y, x + length * math.cos(angle), y + length * math.sin(angle)), fill=shade, width=SCALE)
    return img


def drawn(text: str, glyphs: dict[str, list[Stroke]], aspect: float, weight: float, seed: int) -> Image.Image:
    """One vertical column of drawn characters; `aspect` is the box's width over its height."""
    rng = random.Random(seed)
    h = CHAR * SCALE
    w = h * aspect
    margin = 0.35 * h
    img = paper((round(w + 2 * margin), round(len(text) * h * 1.12 + 2 * margin)), rng)
    draw = ImageDraw.Draw(img)
    for i, char in enumerate(text):
        box = (margin, margin + i * h * 1.12, w, h)
        for points, profile in glyphs[char]:
            jittered = [(px + rng.uniform(-0.004, 0.004), py + rng.uniform(-0.004, 0.004)) for px, py in points]
            stamp(draw, jittered, profile, box, weight * h)
    return finish(img, rng)


def rendered(columns: Sequence[str], seed: int) -> Image.Image:
    """Columns of regular script from AR PL UKai, read top to bottom, right to left."""
    rng = random.Random(seed)
    h = CHAR * SCALE
    font = ImageFont.truetype(str(UKAI), size=round(h * 1.1))
    margin = 0.35 * h
    rows = max(len(c) for c in columns)
    img = paper((round(len(columns) * h * 1.15 + 2 * margin), round(rows * h * 1.1 + 2 * margin)), rng)
    draw = ImageDraw.Draw(img)
    for col, text in enumerate(columns):
        centre = img.width - margin - (col + 0.5) * h * 1.15
        for row, char in enumerate(text):
            draw.text((centre, margin + (row + 0.5) * h * 1.1), char, font=font, fill=INK, anchor="mm")
    return finish(img, rng)


def finish(img: Image.Image, rng: random.Random) -> Image.Image:
    """Soften like ink on paper, tilt a little as a hand-held photo would, reduce, and keep the file small."""
    img = img.filter(ImageFilter.GaussianBlur(SCALE * 0.5))
    img = img.rotate(rng.uniform(-1.5, 1.5), resample=Image.Resampling.BICUBIC, fillcolor=PAPER)
    img = img.resize((img.width // SCALE, img.height // SCALE), Image.Resampling.LANCZOS)
    return img.quantize(colors=32, method=Image.Quantize.MEDIANCUT)


SAMPLES = {
    "kaishu-ukai-1.png": lambda: rendered(["大吉"], 1),
    "kaishu-ukai-2.png": lambda: rendered(["永和", "九年"], 2),
    "lishu-drawn-1.png": lambda: drawn("大吉", LISHU, 1.35, 0.085, 3),
    "lishu-drawn-2.png": lambda: drawn("日出", LISHU, 1.35, 0.085, 4),
    "xiaozhuan-drawn-1.png": lambda: drawn("大吉", XIAOZHUAN, 1 / 1.3, 0.07, 5),
    "xiaozhuan-drawn-2.png": lambda: drawn("山中", XIAOZHUAN, 1 / 1.3, 0.07, 6),
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, make in SAMPLES.items():
        make().save(OUT / name, optimize=True)
        print(f"{OUT / name}: {(OUT / name).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
