"""Training settings: plain values with their defaults in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

RESIZE_METHODS = ("squish", "crop")
# The reviewed list of mislabeled or off-style images in the seed data, shipped as package data. Entries are
# `<class>/<file>` paths under the data root: the seed data and the bot's retraining exports of it match them,
# other data matches none and trains on every image. `calligraphy-3-candidates.csv` beside it holds reviewed
# entries that are true but cost the model when left out (docs/experiments.md, session 15); to measure them again,
# join the two files into one --exclude list.
DEFAULT_EXCLUSIONS = Path(__file__).parent / "exclusions" / "calligraphy-3.csv"

FRAMING_IMAGES = 300  # about 2 minutes of photo copies and features on a CPU
# Whether a run carries a memory of its training images beside the head (trainer/neighbours.py): off, as it
# failed both of session 16's rules (docs/experiments.md), by a page or a character on one model of each pair.
NEIGHBOURS = False
# Whether the runtime divides the training split's class shares out of the probabilities, so that a style with more
# training pages (seal script: about half of them) is not favoured for that (trainer/calibrate.py, session 18).
CLASS_PRIOR = False
# Regular-script characters rendered from Ming typefaces (trainer/typeface.py) added to the training pages: none
# by default until a rule passes (docs/experiments.md, session 19).
TYPEFACE_IMAGES = 0
# Clerical and seal pages given a caption in those typefaces, so printed characters stop meaning regular script
# (trainer/typeface.py, session 20): none by default until a rule passes.
TYPEFACE_CAPTIONS = 0
# Where on the page those captions go: "edge" (runs 65 and 66) or "anywhere" (session 21).
CAPTION_PLACEMENTS = ("edge", "anywhere")
CAPTION_PLACEMENT = "edge"
# Debian's fonts-noto-cjk (Source Han Serif) and fonts-arphic-uming: Ming typefaces, not the Kai ones the fonts
# check renders (benchmarks/font_characters.py).
TRAINING_FONTS = (
    Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
)


@dataclass
class TrainConfig:
    """One training run. The defaults are the production recipe; tests shrink sizes and epochs."""

    data: Path
    out: Path
    arch: str = "tf_efficientnet_lite0"
    pretrained: str = "auto"  # auto: offline package weights, else hub; hub; none
    sizes: tuple[int, ...] = (128, 256)
    epochs_frozen: int = 1
    epochs_unfrozen: int = 8
    bs: int = 32
    lr: float | None = 3e-3  # None: pick with lr_find
    lr_mult: float = 100.0  # earliest layers train at lr / lr_mult once unfrozen
    resize_method: str = "squish"
    max_rotate: float = 10.0
    max_zoom: float = 1.2
    max_lighting: float = 0.3
    p_grey: float = 0.3  # share of training images turned grey
    p_invert: float = 0.2  # share of training images with ink and paper swapped
    p_crop: float = 0.5  # share of training images cut to a random part of the page
    crop_min_scale: float = 0.2  # smallest crop, as a share of the page's area
    p_char: float = 0.1  # share of training images cut to one character of the page (0 before session 9)
    p_low_quality: float = 0.3  # share of training images made smaller, softer and re-compressed
    p_mount: float = 0.0  # share of training images shown as a round fan or with margins of any colour
    # share of training pages shown as a 3 x 3 page of their own characters (trainer.mosaic); runs 36 and 37 with
    # 0.2 lost on the photo copies (docs/experiments.md, session 12)
    p_mosaic: float = 0.0
    tta_crops: int = 1  # squares averaged with the whole image at inference (model.json tta.crops)
    # Training images whose photo copies fit the framing detector (trainer/framing.py), which gives pictures of a
    # few characters a tiled view instead of the crop; 0: no detector.
    framing_images: int = FRAMING_IMAGES
    neighbours: bool = NEIGHBOURS  # the training images' features as a memory beside the head
    class_prior: bool = CLASS_PRIOR  # the training split's class shares divided out at inference
    typeface_images: int = TYPEFACE_IMAGES  # rendered regular-script characters added to training
    typeface_captions: int = TYPEFACE_CAPTIONS  # captioned copies of clerical and seal pages added to training
    caption_placement: str = CAPTION_PLACEMENT  # one of CAPTION_PLACEMENTS
    typeface_fonts: tuple[Path, ...] = TRAINING_FONTS
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 42  # the grouped split's, and the model's initial head and training order unless train_seed is set
    # Reseeds data order, augmentation and dropout once the model is built: runs that differ only here start from
    # the same weights (same head), so their weights can be averaged. None: `seed` drives training too.
    train_seed: int | None = None
    # Runs trained from the same start with train seeds train_seed, +1, +2, ... and averaged in weight space (a
    # model soup, see trainer/soup.py): about `members` times the training time, one model's inference cost.
    members: int = 4
    # Then this many fine-tunes of the soup, each one more stage at the last size (epochs_frozen, then
    # finetune_epochs unfrozen) with the next one-character share of finetune_p_char and its own train seed,
    # averaged again: a second soup around the first (0: ship the first).
    finetune_members: int = 6
    finetune_epochs: int = 3
    finetune_p_char: tuple[float, ...] = (0.0, 0.1, 0.2)
    valid_pct: float = 0.2
    random_baseline: bool = False
    export_learner: bool = False
    num_workers: int | None = None
    exclude: Path | None = DEFAULT_EXCLUSIONS  # file,label,reason CSV of images kept out of training
    init_from: Path | None = None  # a finished run's directory (with learner.pkl) to continue from

    def as_json(self) -> dict:
        values = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        values["sizes"] = list(self.sizes)
        values["finetune_p_char"] = list(self.finetune_p_char)
        values["typeface_fonts"] = [str(font) for font in self.typeface_fonts]
        return values
