"""The progressive-resize schedule: each stage trains the head frozen, then the whole net, at a growing size."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import timm
import torch
import torchvision.models as tvm
from fastai.vision.all import (
    CategoryBlock,
    DataBlock,
    ImageBlock,
    IndexSplitter,
    Learner,
    Normalize,
    Resize,
    ResizeMethod,
    accuracy,
    aug_transforms,
    imagenet_stats,
    load_learner,
    parent_label,
    set_seed,
    vision_learner,
)

from calligraphy.errors import UsageError
from trainer.augment import CharacterCrop, CharacterMosaic, InkAndPaper, LowQualityCopy, Mount, PageCrop
from trainer.config import TrainConfig
from trainer.data import Dataset
from trainer.served_weights import ServedWeightsError, is_model_version, load_served_weights
from trainer.weights import offline_weights

log = logging.getLogger(__name__)

_RESIZE = {"squish": ResizeMethod.Squish, "crop": ResizeMethod.Crop}


@dataclass
class TrainResult:
    """A trained learner and what happened on the way."""

    learn: Learner
    mean: tuple[float, ...]
    std: tuple[float, ...]
    history: list[dict] = field(default_factory=list)
    stage_seconds: list[float] = field(default_factory=list)
    device: str = "cpu"
    member_accuracy: list[float] = field(default_factory=list)  # a soup's members, before averaging
    finetune_accuracy: list[float] = field(default_factory=list)  # the soup's fine-tunes, before averaging


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA GPU")
    return torch.device(requested)


def normalisation(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The input statistics the backbone was pretrained with (timm's config, else ImageNet's)."""
    if timm.is_model(arch):
        cfg = timm.get_pretrained_cfg(arch)
        if cfg is not None:
            return tuple(cfg.mean), tuple(cfg.std)
    return tuple(imagenet_stats[0]), tuple(imagenet_stats[1])


def make_dataloaders(dataset: Dataset, valid_idx: list[int], size: int, config: TrainConfig, device: torch.device):
    """DataLoaders at one stage's size; augmentation never flips (calligraphy is never mirrored)."""
    mean, std = normalisation(config.arch)
    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock(vocab=dataset.classes)),
        get_y=parent_label,
        splitter=IndexSplitter(valid_idx),
        item_tfms=[
            CharacterMosaic(p=config.p_mosaic),
            PageCrop(min_scale=config.crop_min_scale, p=config.p_crop),
            CharacterCrop(p=config.p_char),
            Mount(p=config.p_mount),
            Resize(size, method=_RESIZE[config.resize_method]),
            LowQualityCopy(p=config.p_low_quality),
        ],
        batch_tfms=[
            *aug_transforms(
                do_flip=False,
                max_rotate=config.max_rotate,
                max_zoom=config.max_zoom,
                max_lighting=config.max_lighting,
                max_warp=0.0,
            ),
            InkAndPaper(p_grey=config.p_grey, p_invert=config.p_invert),
            Normalize.from_stats(mean, std),
        ],
    )
    workers = config.num_workers if config.num_workers is not None else (4 if device.type == "cuda" else 0)
    # A last training batch of one image breaks the head's BatchNorm; any other remainder still trains.
    lone_last = (len(dataset.items) - len(valid_idx)) % config.bs == 1
    return block.dataloaders(
        dataset.items, bs=config.bs, num_workers=workers, device=device, shuffle=True, drop_last=lone_last
    )


def _create_learner(dls, config: TrainConfig) -> Learner:
    kwargs: dict = {}
    pretrained = config.pretrained != "none"
    if config.pretrained == "auto":
        weights = offline_weights(config.arch)
        if weights is not None:
            kwargs["pretrained_cfg_overlay"] = {"file": str(weights)}
    arch = config.arch
    if not timm.is_model(arch) and hasattr(tvm, arch):
        arch = getattr(tvm, arch)
    return vision_learner(dls, arch, pretrained=pretrained, metrics=accuracy, **kwargs)


def load_run_learner(run_dir: Path) -> Learner:
    """A finished run's learner (its `learner.pkl`, written by `--export-learner`), on the CPU."""
    path = Path(run_dir) / "learner.pkl"
    if not path.is_file():
        raise UsageError(f"{run_dir} has no learner.pkl (train it with --export-learner)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fastai warns that pickles run code: this one is our own run's
        return load_learner(path, cpu=True)


def _continue_from(learn: Learner, run_dir: Path, arch: str) -> None:
    """Start from a finished run's weights, e.g. to add a larger stage to its schedule without retraining it,
    or from a model version's (one the bot serves), which keeps only its ONNX graph."""
    if not (Path(run_dir) / "learner.pkl").is_file():
        if not is_model_version(run_dir):
            raise UsageError(
                f"{run_dir} is neither a run with a learner.pkl (train it with --export-learner) "
                "nor a model version (model.json and model.onnx)"
            )
        try:
            load_served_weights(learn.model, run_dir, arch, list(learn.dls.vocab), learn.dls.train)
        except ServedWeightsError as error:
            raise UsageError(str(error)) from None
        return
    previous = load_run_learner(run_dir)
    if list(previous.dls.vocab) != list(learn.dls.vocab):
        raise UsageError(f"{run_dir} was trained on classes {list(previous.dls.vocab)}, not {list(learn.dls.vocab)}")
    try:
        learn.model.load_state_dict(previous.model.state_dict())
    except RuntimeError as error:
        raise UsageError(f"{run_dir} holds another architecture's weights: {str(error).splitlines()[0]}") from None
    log.info("continuing from %s", run_dir)


def build_learner(
    dataset: Dataset,
    valid_idx: list[int],
    config: TrainConfig,
    device: torch.device,
    start: dict[str, torch.Tensor] | None = None,
) -> Learner:
    """The learner before its first epoch: its weights follow `seed` (or `start`, a model's state dict, or the
    run `init_from`), its data order and augmentation `train_seed` when set, so runs that differ only in
    `train_seed` start from the same weights."""
    set_seed(config.seed, reproducible=True)
    learn = _create_learner(make_dataloaders(dataset, valid_idx, config.sizes[0], config, device), config)
    if start is not None:
        learn.model.load_state_dict(start)
    elif config.init_from is not None:
        _continue_from(learn, config.init_from, config.arch)
    if config.train_seed is not None:
        set_seed(config.train_seed, reproducible=True)
        learn.dls = make_dataloaders(dataset, valid_idx, config.sizes[0], config, device)  # shuffles by train_seed
    return learn


def train(
    dataset: Dataset, valid_idx: list[int], config: TrainConfig, start: dict[str, torch.Tensor] | None = None
) -> TrainResult:
    """Run every stage of the schedule (from `start`'s weights if given) and return the learner, on the CPU,
    ready for export."""
    device = resolve_device(config.device)
    mean, std = normalisation(config.arch)
    learn = build_learner(dataset, valid_idx, config, device, start)
    if device.type == "cuda":
        learn = learn.to_fp16()
    result = TrainResult(learn=learn, mean=mean, std=std, device=str(device))
    for stage, size in enumerate(config.sizes):
        started = time.perf_counter()
        if stage:
            learn.dls = make_dataloaders(dataset, valid_idx, size, config, device)
        learn.freeze()
        lr = config.lr
        if lr is None:
            lr = float(learn.lr_find(show_plot=False).valley)
            log.info("stage %d: lr_find suggests %.2e", stage, lr)
        if config.epochs_frozen:
            learn.fit_one_cycle(config.epochs_frozen, lr)
            _record(result, stage, size, "frozen")
        learn.unfreeze()
        if config.epochs_unfrozen:
            learn.fit_one_cycle(config.epochs_unfrozen, slice(lr / config.lr_mult, lr / 2))
            _record(result, stage, size, "unfrozen")
        result.stage_seconds.append(time.perf_counter() - started)
    if device.type == "cuda":
        result.learn = learn.to_fp32()
    return result


def _record(result: TrainResult, stage: int, size: int, phase: str) -> None:
    """Keep the epochs of the fit just finished: fastai's recorder forgets them at the next fit."""
    for epoch, values in enumerate(result.learn.recorder.values):
        train_loss, valid_loss, acc = (float(v) for v in values[:3])
        result.history.append(
            {
                "stage": stage,
                "size": size,
                "phase": phase,
                "epoch": epoch,
                "train_loss": train_loss,
                "valid_loss": valid_loss,
                "accuracy": acc,
            }
        )


def validation_predictions(learn: Learner) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and true class indices on the validation set, in the learner's vocab order."""
    probs, targets = learn.get_preds(ds_idx=1)
    return probs.numpy(), targets.numpy()


def validation_accuracy(learn: Learner) -> float:
    """Share of validation images whose most probable class is the true one."""
    probs, targets = validation_predictions(learn)
    return float((probs.argmax(axis=1) == targets).mean())
