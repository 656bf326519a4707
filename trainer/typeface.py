"""Regular script from typefaces: characters rendered from a font, as training images or as a check.

Every regular-script page of the seed data is a brush work scanned whole; users also photograph printed
characters, one or a few. A typeface is regular script drawn by a type designer, so rendered characters are
regular script from a source the pages never show. Training renders Ming (Song) typefaces by default, and the
fonts check (`benchmarks/font_characters.py`) renders Kai typefaces, with characters training never draws
(`HELD_OUT`), so that check stays a measure of typefaces the model has not seen.

Real clerical and seal works carry printed or regular script too: a book's title, glosses, a signature, a
watermark. Taught that printed characters are regular script, a model reads such a page as regular script
(session 20), so captions of printed characters are also drawn on clerical and seal pages, which keep their
label: along an edge (a title or a signature) or anywhere, in ink from faint to solid (glosses between the
columns, a watermark over them: session 21).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont, ImageOps, ImageStat

from calligraphy.errors import UsageError
from trainer.config import CAPTION_PLACEMENT
from trainer.data import Dataset
from trainer.photo_copies import jpeg

log = logging.getLogger(__name__)

LABEL = "kaishu"
# 144 common characters (36 blocks of four), from simple to dense: the fonts check's, never rendered for training.
HELD_OUT = (
    "一人大天中上下山水火木日月不子之也而其于以为有无生年出我心手文书学道言风雨春秋花草石田王国家行自得来"
    "去见长高明光东西南北开门问间时事物重新老远近多少前后左右白黑青红金玉马鸟鱼龙云雪海河江湖林森竹兰"
    "梅松思想意情爱忠孝仁义礼智信德善美真和平安静清正直画诗词歌读写观听说语声音乐舞飞走游登临望归"
)
SIZE = 320


def common_characters() -> str:
    """GB 2312's first level (3,755 characters in everyday use), less `HELD_OUT`."""
    held = set(HELD_OUT)
    chars = []
    for row in range(0xB0, 0xD8):
        for cell in range(0xA1, 0xFF):
            try:
                char = bytes((row, cell)).decode("gb2312")
            except UnicodeDecodeError:  # the last row ends early
                continue
            if char not in held:
                chars.append(char)
    return "".join(chars)


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


def missing_characters(font_path: Path, chars: str) -> str:
    """The characters of `chars` the font has no glyph for (it would draw them as empty boxes)."""
    cmap = TTFont(font_path, fontNumber=0).getBestCmap()
    return "".join(char for char in chars if ord(char) not in cmap)


@dataclass(frozen=True)
class Typefaces:
    """Fonts to render training characters from, with the common characters every one of them draws."""

    fonts: tuple[Path, ...]
    chars: str


def load_typefaces(fonts: tuple[Path, ...]) -> Typefaces:
    """Read which characters the fonts draw; a missing font, or one without Chinese, is the user's to fix."""
    chars = common_characters()
    for font in fonts:
        if not font.is_file():
            raise UsageError(f"{font} is missing (Debian packages the defaults: fonts-noto-cjk, fonts-arphic-uming)")
        lacking = set(missing_characters(font, chars))
        if len(lacking) > len(chars) / 2:
            raise UsageError(f"{font} draws only {len(chars) - len(lacking)} of {len(chars)} common Chinese characters")
        chars = "".join(char for char in chars if char not in lacking)
    return Typefaces(fonts, chars)


def with_typeface_characters(dataset: Dataset, n: int, typefaces: Typefaces, directory: Path, seed: int) -> Dataset:
    """`dataset` with `n` rendered regular-script images appended as training items (validation is unchanged).

    Two in three are one character, the rest a 2 × 2 block; half are rubbings. The images are JPEG files under
    `directory/kaishu/`, so they load and augment as the pages do.
    """
    if LABEL not in dataset.classes:
        raise UsageError(f"typeface characters are {LABEL}, a class this data lacks ({', '.join(dataset.classes)})")
    rng = random.Random(seed)
    folder = directory / LABEL
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        per_side = 1 if rng.random() < 2 / 3 else 2
        chars = "".join(rng.sample(typefaces.chars, per_side**2))
        image = render(rng.choice(typefaces.fonts), chars, per_side, rng.random() < 0.5, rng)
        path = folder / f"typeface_{i:05d}.jpg"
        path.write_bytes(jpeg(image))
        items.append(path)
    fonts = ", ".join(font.name for font in typefaces.fonts)
    log.info("%d typeface characters from %s added to training as %s", n, fonts, LABEL)
    return replace(dataset, items=dataset.items + items, labels=dataset.labels + [LABEL] * n)


def caption(
    page: Image.Image, font_path: Path, chars: str, rng: random.Random, placement: str = CAPTION_PLACEMENT
) -> Image.Image:
    """`page` with a short line of printed `chars`, in ink that stands out from the page there.

    The line is a column or a row, its characters 3–7 % of the page's short side: a title, a gloss or a
    signature, never the page's main script. `placement` "edge" puts it at the left or right edge or at the top
    or bottom in solid ink; "anywhere" puts it at any distance from them, over the page's own script too, in ink
    from faint (35 % of the way from the page's tone) to solid. Only as many of `chars` as fit are drawn.
    """
    img = page.convert("RGB")
    width, height = img.size
    size = max(8, round(min(width, height) * rng.uniform(0.03, 0.07)))
    step = size * 1.15
    vertical = rng.random() < 0.5
    room = (height if vertical else width) - 2 * size
    chars = chars[: max(1, int(room // step))]
    start = rng.uniform(size, max(size, size + room - len(chars) * step)) + step / 2
    across = width if vertical else height
    if placement == "edge":
        edge = rng.choice((size * 0.8, across - size * 0.8))
    else:
        edge = rng.uniform(size * 0.8, across - size * 0.8)
    centres = [(edge, start + i * step) if vertical else (start + i * step, edge) for i in range(len(chars))]
    xs, ys = [x for x, _ in centres], [y for _, y in centres]
    band = img.crop(
        (int(min(xs) - size / 2), int(min(ys) - size / 2), int(max(xs) + size / 2), int(max(ys) + size / 2))
    )
    tone = ImageStat.Stat(band.convert("L")).median[0]
    ink = rng.randint(10, 60) if tone > 128 else rng.randint(200, 245)
    strength = 1.0 if placement == "edge" else rng.uniform(0.35, 1.0)
    fill = (round(tone + strength * (ink - tone)),) * 3
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(font_path), size)
    for char, centre in zip(chars, centres, strict=True):
        draw.text(centre, char, font=font, fill=fill, anchor="mm")
    return img


def with_typeface_captions(
    dataset: Dataset,
    valid_idx: list[int],
    n: int,
    typefaces: Typefaces,
    directory: Path,
    seed: int,
    placement: str = CAPTION_PLACEMENT,
) -> Dataset:
    """`dataset` with `n` copies of its training pages of other styles than kaishu, each with a printed caption.

    The copies keep their page's label and are JPEG files under `directory/<label>/`; validation is unchanged.
    """
    held = set(valid_idx)
    pages = [i for i, label in enumerate(dataset.labels) if label != LABEL and i not in held]
    if not pages:
        raise UsageError(f"typeface captions go on training pages of other styles than {LABEL}; this data has none")
    rng = random.Random(seed)
    items, labels = [], []
    for i in range(n):
        index = rng.choice(pages)
        label = dataset.labels[index]
        with Image.open(dataset.items[index]) as page:
            chars = "".join(rng.sample(typefaces.chars, 12))
            image = caption(page, rng.choice(typefaces.fonts), chars, rng, placement)
        folder = directory / label
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"caption_{i:05d}.jpg"
        path.write_bytes(jpeg(image))
        items.append(path)
        labels.append(label)
    log.info("%d training pages of other styles than %s captioned in print and added to training", n, LABEL)
    return replace(dataset, items=dataset.items + items, labels=dataset.labels + labels)
