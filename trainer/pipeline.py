"""One training run from a folder of images to a verified version directory."""

from __future__ import annotations

import logging
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from model_store.metadata import write_metadata
from trainer import calibrate, export, report
from trainer.config import TrainConfig
from trainer.data import (
    Dataset,
    exclude_from_training,
    group_ids,
    grouped_split,
    random_split,
    read_exclusions,
    scan_dataset,
)
from trainer.soup import train_recipe
from trainer.train import TrainResult, validation_accuracy, validation_predictions
from trainer.typeface import Typefaces, load_typefaces, with_typeface_captions, with_typeface_characters

log = logging.getLogger(__name__)


def _train(train_set: Dataset, valid_idx: list[int], typefaces: Typefaces | None, config: TrainConfig) -> TrainResult:
    """The recipe, with its typeface characters and captions in a folder that lives only as long as training."""
    with tempfile.TemporaryDirectory(prefix="typefaces-") as rendered:
        seed = config.seed if config.train_seed is None else config.train_seed
        if typefaces is not None and config.typeface_images:
            train_set = with_typeface_characters(train_set, config.typeface_images, typefaces, Path(rendered), seed)
        if typefaces is not None and config.typeface_captions:
            n, placement = config.typeface_captions, config.caption_placement
            train_set = with_typeface_captions(train_set, valid_idx, n, typefaces, Path(rendered), seed, placement)
        return train_recipe(train_set, valid_idx, config)


def _random_split_accuracy(
    dataset: Dataset, exclusions: dict[str, str], typefaces: Typefaces | None, config: TrainConfig
) -> float:
    """The same recipe on a plain random split: the leaky number the seed reported, for contrast."""
    valid_idx = random_split(len(dataset.items), config.valid_pct, config.seed)
    return validation_accuracy(_train(*exclude_from_training(dataset, valid_idx, exclusions), typefaces, config).learn)


def run(config: TrainConfig) -> dict:
    """Train, evaluate, calibrate and export; return the metadata written to `model.json`."""
    started = time.perf_counter()
    exclusions = read_exclusions(config.exclude) if config.exclude is not None else {}
    # A missing font is refused before the data is read.
    typefaces = load_typefaces(config.typeface_fonts) if config.typeface_images or config.typeface_captions else None
    dataset = scan_dataset(config.data)
    groups = group_ids(dataset)
    valid_idx = grouped_split(dataset, groups, config.valid_pct, config.seed)
    log.info(
        "%d images in %d classes (%d skipped), %d groups; validation: %d images",
        len(dataset.items),
        len(dataset.classes),
        len(dataset.skipped),
        len(set(groups)),
        len(valid_idx),
    )
    train_set, train_valid_idx = exclude_from_training(dataset, valid_idx, exclusions)
    result = _train(train_set, train_valid_idx, typefaces, config)
    learn = result.learn
    probs, targets = validation_predictions(learn)
    classes = list(learn.dls.vocab)
    metrics = report.classification_metrics(probs, targets, classes)
    metrics["split"] = "grouped"
    if result.member_accuracy:
        metrics["member_accuracy"] = result.member_accuracy
    if result.finetune_accuracy:
        metrics["finetune_accuracy"] = result.finetune_accuracy

    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    size = config.sizes[-1]
    model = learn.model.eval().cpu()
    export.export_onnx(model, out / "model.onnx", size)
    batch = learn.dls.valid.one_batch()[0].as_subclass(torch.Tensor)[:8]
    parity = export.check_parity(model, out / "model.onnx", batch)
    train_seconds = time.perf_counter() - started

    report.write_plots(metrics, result.history, classes, out)
    if config.export_learner:
        learn.export(out.resolve() / "learner.pkl")

    metadata = {
        "format_version": export.FORMAT_VERSION,
        "classes": classes,
        "input_size": size,
        "resize_method": config.resize_method,
        "resample": "bilinear",
        "mean": list(result.mean),
        "std": list(result.std),
        "temperature": 1.0,  # until calibrate_run below fits it
        "tta": {"crops": config.tta_crops},
        "arch": config.arch,
        "metrics": metrics,
        "onnx": {"opset": export.OPSET, "parity_max_abs_diff": parity},
        "dataset": {
            "root": str(config.data),
            "fingerprint": dataset.fingerprint(),
            "n_images": len(dataset.items),
            "n_groups": len(set(groups)),
            "skipped": len(dataset.skipped),
            "skipped_files": [{"file": f, "reason": r} for f, r in dataset.skipped],
            "excluded": len(train_set.excluded),
            "excluded_files": [{"file": f, "reason": r} for f, r in train_set.excluded],
            "per_class": dataset.per_class,
            "valid_files": [dataset.items[i].relative_to(dataset.root).as_posix() for i in valid_idx],
        },
        "training": config.as_json(),
        "history": result.history,
        "timings": {
            "train_and_export_s": round(train_seconds, 1),
            "stage_s": [round(s, 1) for s in result.stage_seconds],
            "device": result.device,
            "host": platform.node(),
            "torch": torch.__version__,
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_metadata(out, metadata)  # the runtime reads it to predict the photo copies
    metadata = calibrate.calibrate_run(
        out,
        config.data,
        framing_images=config.framing_images,
        neighbours=config.neighbours,
        prior=config.class_prior,
    )
    metadata["timings"]["total_s"] = round(time.perf_counter() - started, 1)
    write_metadata(out, metadata)
    if config.random_baseline:
        metadata["metrics"]["random_split_accuracy"] = _random_split_accuracy(dataset, exclusions, typefaces, config)
        write_metadata(out, metadata)
    return metadata


def summary_line(metadata: dict) -> str:
    metrics = metadata["metrics"]
    recalls = ", ".join(f"{c} {v['recall']:.2f}" for c, v in metrics["per_class"].items())
    random_part = f", random split {metrics['random_split_accuracy']:.3f}" if "random_split_accuracy" in metrics else ""
    return (
        f"grouped-split accuracy {metrics['accuracy']:.3f} (n={metrics['n_valid']}; recall {recalls})"
        f"{random_part}; {calibrate.calibration_summary(metadata)}; {metadata['timings']['total_s']:.0f} s on "
        f"{metadata['timings']['device']}"
    )
