"""`calligraphy train` and `calligraphy calibrate`: argument parsing only; fastai and onnxruntime are imported
when a command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from calligraphy.errors import UsageError
from model_store.cli import whole_number
from trainer.config import CAPTION_PLACEMENTS, RESIZE_METHODS, TRAINING_FONTS, TrainConfig


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or any(s < 16 for s in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be at least 16 px each, got {text!r}")
    return sizes


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _shares(text: str) -> tuple[float, ...]:
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"must be comma-separated shares between 0 and 1, got {text!r}")
    return tuple(_probability(part) for part in parts)


def _fraction(text: str) -> float:
    """A share of the data that leaves both sides non-empty."""
    value = _probability(text)
    if value in (0, 1):
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def _lr(text: str) -> float | None:
    return None if text == "auto" else float(text)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `train` and `calibrate`."""
    d = TrainConfig(data=Path(), out=Path())
    p = sub.add_parser(
        "train",
        help="train a model on a folder per class and export it as a version directory",
        description="Progressive-resize fastai training (frozen head, then the whole net, per size), "
        "validated on a split that keeps near-duplicates and book series together, exported to ONNX.",
    )
    p.add_argument("--data", type=Path, required=True, help="DIR/<class>/<image> folders")
    p.add_argument("--out", type=Path, required=True, help="version directory to write")
    p.add_argument("--arch", default=d.arch, help="timm or torchvision architecture (default %(default)s)")
    p.add_argument(
        "--pretrained",
        choices=("auto", "hub", "none"),
        default=d.pretrained,
        help="auto: offline package weights where installed, else the hub (default %(default)s)",
    )
    p.add_argument("--sizes", type=_sizes, default=d.sizes, help="progressive sizes, e.g. 128,256")
    p.add_argument("--epochs-frozen", type=int, default=d.epochs_frozen, help="per stage (default %(default)s)")
    p.add_argument("--epochs-unfrozen", type=int, default=d.epochs_unfrozen, help="per stage (default %(default)s)")
    p.add_argument("--bs", type=int, default=d.bs, help="batch size (default %(default)s)")
    p.add_argument("--lr", type=_lr, default=d.lr, help="peak learning rate, or 'auto' for lr_find")
    p.add_argument("--p-grey", type=_probability, default=d.p_grey, help="share of training images made grey")
    p.add_argument(
        "--p-invert",
        type=_probability,
        default=d.p_invert,
        help="share of training images with ink and paper swapped (rubbing ↔ copy)",
    )
    p.add_argument(
        "--p-crop",
        type=_probability,
        default=d.p_crop,
        help="share of training images cut to a random part of the page (a few characters to all)",
    )
    p.add_argument(
        "--crop-min-scale",
        type=_fraction,
        default=d.crop_min_scale,
        help="smallest page crop as a share of the page's area (default %(default)s)",
    )
    p.add_argument(
        "--p-char",
        type=_probability,
        default=d.p_char,
        help="share of training images cut to one character of the page (found by its blank surroundings)",
    )
    p.add_argument(
        "--p-low-quality",
        type=_probability,
        default=d.p_low_quality,
        help="share of training images made smaller, softer and re-compressed, as phone photos come",
    )
    p.add_argument(
        "--p-mount",
        type=_probability,
        default=d.p_mount,
        help="share of training images shown as a round fan or with margins, on a mount of any colour",
    )
    p.add_argument(
        "--p-mosaic",
        type=_probability,
        default=d.p_mosaic,
        help="share of training pages shown as a 3 x 3 page of their own characters, without the page's layout",
    )
    p.add_argument(
        "--tta-crops",
        type=int,
        choices=range(0, 7),
        metavar="{0..6}",
        default=d.tta_crops,
        help="squares the runtime averages with the whole image (default %(default)s; written to model.json)",
    )
    p.add_argument(
        "--framing-images",
        type=whole_number(0),
        default=d.framing_images,
        help="training images whose photo copies fit the detector that gives pictures of a few characters a "
        "tiled view instead of the crop (0: none; default %(default)s)",
    )
    p.add_argument(
        "--neighbours",
        action=argparse.BooleanOptionalAction,
        default=d.neighbours,
        help="carry the training images' features as a memory whose nearest neighbours vote beside the head "
        "(default %(default)s)",
    )
    p.add_argument(
        "--class-prior",
        action=argparse.BooleanOptionalAction,
        default=d.class_prior,
        help="divide the training split's class shares out of the probabilities, so no style is favoured for "
        "having more training pages (default %(default)s)",
    )
    p.add_argument(
        "--typeface-images",
        type=whole_number(0),
        default=d.typeface_images,
        metavar="N",
        help="add N regular-script characters rendered from Ming typefaces to training (default %(default)s)",
    )
    p.add_argument(
        "--typeface-captions",
        type=whole_number(0),
        default=d.typeface_captions,
        metavar="N",
        help="add N copies of clerical and seal training pages, each with a caption printed in those typefaces "
        "(default %(default)s)",
    )
    p.add_argument(
        "--caption-placement",
        choices=CAPTION_PLACEMENTS,
        default=d.caption_placement,
        help="where --typeface-captions go: along an edge in solid ink, or anywhere in faint to solid ink "
        "(default %(default)s)",
    )
    p.add_argument(
        "--typeface-font",
        type=Path,
        action="append",
        help="font for --typeface-images and --typeface-captions; repeatable (default: Noto Serif CJK and AR PL UMing)",
    )
    p.add_argument("--resize-method", choices=RESIZE_METHODS, default=d.resize_method)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=d.device)
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the split and of the model's start")
    p.add_argument(
        "--train-seed",
        type=int,
        default=d.train_seed,
        help="reseed data order and augmentation after the model is built: runs that differ only here start "
        "from the same weights and can be averaged (default: --seed drives training too)",
    )
    p.add_argument(
        "--members",
        type=int,
        choices=range(1, 9),
        metavar="{1..8}",
        default=d.members,
        help="train this many runs that differ only in data order and augmentation and average their weights "
        "(a model soup): about that many times the training time, one model's inference cost "
        "(default %(default)s)",
    )
    p.add_argument(
        "--finetune-members",
        type=int,
        choices=range(0, 9),
        metavar="{0..8}",
        default=d.finetune_members,
        help="then fine-tune the soup this many times, one more stage at the last size each, and average those "
        "(0: ship the soup of --members; default %(default)s)",
    )
    p.add_argument(
        "--finetune-epochs",
        type=int,
        default=d.finetune_epochs,
        help="unfrozen epochs of each fine-tune, after --epochs-frozen (default %(default)s)",
    )
    p.add_argument(
        "--finetune-p-char",
        type=_shares,
        default=d.finetune_p_char,
        help="one-character shares the fine-tunes take in turn (default: "
        + ",".join(str(v) for v in d.finetune_p_char)
        + ")",
    )
    p.add_argument("--valid-pct", type=_fraction, default=d.valid_pct)
    p.add_argument("--num-workers", type=int, default=None, help="data loader processes (default: 0 on CPU)")
    p.add_argument(
        "--random-baseline",
        action="store_true",
        help="also train on a plain random split and report its (leaky) accuracy",
    )
    p.add_argument("--export-learner", action="store_true", help="also save fastai's learner.pkl")
    p.add_argument(
        "--init-from",
        type=Path,
        metavar="DIR",
        help="start from a finished run's weights (its learner.pkl) or a model version's (model.json and "
        "model.onnx, e.g. the served one) instead of the pretrained backbone, e.g. to add a larger stage: "
        "--init-from runs/v3 --sizes 320",
    )
    exclusion = p.add_mutually_exclusive_group()
    exclusion.add_argument(
        "--exclude",
        type=Path,
        default=d.exclude,
        metavar="CSV",
        help="file,label,reason list of images kept out of training, never out of validation "
        "(default: the packaged review of the calligraphy-3 data)",
    )
    exclusion.add_argument(
        "--no-exclude", dest="exclude", action="store_const", const=None, help="train on every image"
    )
    p.set_defaults(func=run)

    c = sub.add_parser(
        "calibrate",
        help="refit a trained run's temperature on its validation images and their photo-like copies",
        description="Predict the run's validation images and photo-like copies of them (inverted, grey, tilted, "
        "yellowed, uneven light, page crops, phone quality, a round fan, margins), fit one temperature on both, "
        "and rewrite the run's model.json (temperature, calibration, calibration metrics) and reliability.png in "
        "place. For runs trained before training did this itself; stored versions are read-only.",
    )
    c.add_argument("--model", type=Path, required=True, metavar="DIR", help="the run directory (train's --out)")
    c.add_argument("--data", type=Path, required=True, metavar="DIR", help="the dataset the run was trained on")
    c.add_argument("--seed", type=int, default=0, help="seed for the copies' random parameters (default 0)")
    c.add_argument(
        "--framing-images",
        type=whole_number(0),
        default=d.framing_images,
        help="training images whose photo copies refit the framing detector first (0: remove it; default %(default)s)",
    )
    c.add_argument(
        "--neighbours",
        action=argparse.BooleanOptionalAction,
        default=d.neighbours,
        help="rebuild the memory of training images whose nearest neighbours vote beside the head "
        "(--no-neighbours removes it; default %(default)s)",
    )
    c.add_argument(
        "--class-prior",
        action=argparse.BooleanOptionalAction,
        default=d.class_prior,
        help="divide the training split's class shares out of the probabilities, so no style is favoured for "
        "having more training pages (--no-class-prior removes it; default %(default)s)",
    )
    c.set_defaults(func=run_calibrate)

    s = sub.add_parser(
        "soup",
        help="average the weights of runs trained separately into one model (a model soup)",
        description="Average the learner.pkl weights of finished runs (trained with --export-learner from the same "
        "--seed, arch and split, e.g. with other --train-seed values or a recipe variant), then export, measure "
        "and calibrate the average as training does. What --members N does, from runs that already exist.",
    )
    s.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories (train's --out)")
    s.add_argument("--out", type=Path, required=True, metavar="DIR", help="new run directory to write")
    s.add_argument("--data", type=Path, required=True, metavar="DIR", help="the dataset the runs were trained on")
    s.add_argument("--export-learner", action="store_true", help="also save the soup's learner.pkl")
    s.set_defaults(func=run_soup)


def run(args: argparse.Namespace) -> int:
    if args.epochs_frozen < 0 or args.epochs_unfrozen < 0 or args.epochs_frozen + args.epochs_unfrozen == 0:
        raise UsageError("--epochs-frozen and --epochs-unfrozen must be >= 0 and not both 0")
    if args.finetune_members and (args.finetune_epochs < 0 or args.epochs_frozen + args.finetune_epochs == 0):
        raise UsageError("--finetune-epochs must be >= 0 and not 0 with --epochs-frozen 0")
    config = TrainConfig(
        data=args.data,
        out=args.out,
        arch=args.arch,
        pretrained=args.pretrained,
        sizes=args.sizes,
        epochs_frozen=args.epochs_frozen,
        epochs_unfrozen=args.epochs_unfrozen,
        bs=args.bs,
        lr=args.lr,
        resize_method=args.resize_method,
        p_grey=args.p_grey,
        p_invert=args.p_invert,
        p_crop=args.p_crop,
        p_char=args.p_char,
        crop_min_scale=args.crop_min_scale,
        p_low_quality=args.p_low_quality,
        p_mount=args.p_mount,
        p_mosaic=args.p_mosaic,
        tta_crops=args.tta_crops,
        framing_images=args.framing_images,
        neighbours=args.neighbours,
        class_prior=args.class_prior,
        typeface_images=args.typeface_images,
        typeface_captions=args.typeface_captions,
        caption_placement=args.caption_placement,
        typeface_fonts=tuple(args.typeface_font or TRAINING_FONTS),
        device=args.device,
        seed=args.seed,
        train_seed=args.train_seed,
        members=args.members,
        finetune_members=args.finetune_members,
        finetune_epochs=args.finetune_epochs,
        finetune_p_char=args.finetune_p_char,
        valid_pct=args.valid_pct,
        num_workers=args.num_workers,
        random_baseline=args.random_baseline,
        export_learner=args.export_learner,
        exclude=args.exclude,
        init_from=args.init_from,
    )
    from trainer.pipeline import run as run_pipeline
    from trainer.pipeline import summary_line

    metadata = run_pipeline(config)
    print(f"trained {config.arch} → {config.out}: {summary_line(metadata)}")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from trainer.calibrate import calibrate_run, calibration_summary

    metadata = calibrate_run(args.model, args.data, args.seed, args.framing_images, args.neighbours, args.class_prior)
    print(f"calibrated {args.model}: {calibration_summary(metadata)}")
    return 0


def run_soup(args: argparse.Namespace) -> int:
    from trainer.assemble import assemble_soup
    from trainer.pipeline import summary_line

    metadata = assemble_soup(args.runs, args.out, args.data, export_learner=args.export_learner)
    print(f"soup of {len(args.runs)} runs → {args.out}: {summary_line(metadata)}")
    return 0
