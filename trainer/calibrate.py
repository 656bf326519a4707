"""Honest probabilities on what users send: one temperature fitted on the validation images and their
photo-like copies, and how well it worked on each.

Users send photos, not clean scans, and a temperature fitted on clean pages alone is off on photos (over- or
under-confident). The fit pools the validation images as stored with their copies from `trainer.photo_copies`,
each side half the weight, predicting with the runtime the bot uses; the copies also give the accuracy per
condition (robustness) that every run reports.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calligraphy.errors import UsageError
from model_store.images import ImageError, decode_image
from model_store.metadata import METADATA_FILE, ModelError, class_prior, read_metadata, write_metadata
from model_store.runtime import Classifier
from model_store.runtime import calibrate as apply_temperature
from model_store.store import CHECKSUM_FILE
from trainer.config import CLASS_PRIOR, FRAMING_IMAGES, NEIGHBOURS
from trainer.framing import FramingError, fit_framing
from trainer.neighbours import build_neighbours, remove_neighbours
from trainer.photo_copies import CONDITIONS, PHOTO_CONDITIONS, photo_copies
from trainer.report import log_loss, plt

log = logging.getLogger(__name__)

RELIABILITY_FILE = "reliability.png"


def fit_temperature(probs: np.ndarray, targets: np.ndarray, prior: Sequence[float] | None = None) -> float:
    """The temperature in [0.05, 20] that minimises validation log loss (golden-section search on log T), with the
    class prior divided out as the runtime will."""
    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        loss_a = log_loss(apply_temperature(probs, np.exp(a), prior), targets)
        if loss_a < log_loss(apply_temperature(probs, np.exp(b), prior), targets):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def fit_pooled_temperature(
    clean_probs: np.ndarray,
    clean_targets: np.ndarray,
    copy_probs: np.ndarray,
    copy_targets: np.ndarray,
    prior: Sequence[float] | None = None,
) -> float:
    """One temperature for clean images and their copies, each side half the weight.

    The copies outnumber the clean images (one per condition), so the clean set is repeated as many times
    as there are copies per image: otherwise the copies alone would decide.
    """
    repeats = max(1, round(len(copy_targets) / len(clean_targets)))
    probs = np.concatenate([np.tile(clean_probs, (repeats, 1)), copy_probs])
    targets = np.concatenate([np.tile(clean_targets, repeats), copy_targets])
    return fit_temperature(probs, targets, prior)


def training_shares(metadata: dict) -> dict[str, float]:
    """Each class's share of a run's training images (its data less the validation split and the exclusion
    list), from what `model.json` records of them: the prior the run's probabilities lean toward."""
    dataset = metadata.get("dataset", {})
    counts = dict(dataset.get("per_class") or {})
    left_out = list(dataset.get("valid_files") or [])
    left_out += [row["file"] for row in dataset.get("excluded_files") or [] if isinstance(row, dict)]
    for file in left_out:
        label = file.split("/")[0]
        if label in counts:
            counts[label] -= 1
    classes = metadata["classes"]
    if set(counts) != set(classes) or min(counts.values()) < 1:
        raise UsageError("model.json's dataset block does not give every class a training image: no class prior")
    total = sum(counts.values())
    return {c: counts[c] / total for c in classes}


def reliability(probs: np.ndarray, targets: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error and the per-bin confidence/accuracy it is made of."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    edges = np.linspace(0, 1, bins + 1)
    rows, ece = [], 0.0
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if not in_bin.any():
            continue
        acc, conf = float(correct[in_bin].mean()), float(confidence[in_bin].mean())
        ece += in_bin.mean() * abs(acc - conf)
        rows.append(
            {
                "low": float(low),
                "high": float(high),
                "n": int(in_bin.sum()),
                "accuracy": acc,
                "confidence": conf,
            }
        )
    return float(ece), rows


@dataclass(frozen=True)
class PhotoCalibration:
    """What `photo_calibration` measured: the fitted temperature, the ECE and bins before and after it on
    the clean images and on the photo copies, and the accuracy per condition."""

    temperature: float
    seed: int
    n_images: int
    ece_raw: float
    ece: float
    ece_photos_raw: float
    ece_photos: float
    bins_raw: list[dict]
    bins: list[dict]
    bins_photos_raw: list[dict]
    bins_photos: list[dict]
    robustness: dict[str, float]
    accuracy: float  # the runtime's, crops included, on the validation images as stored
    crops: int

    def update(self, metadata: dict) -> None:
        """Write the temperature, the calibration block and the calibration metrics into `metadata`."""
        metadata["temperature"] = self.temperature
        metadata.setdefault("metrics", {}).update(
            ece_raw=self.ece_raw,
            ece=self.ece,
            ece_photos_raw=self.ece_photos_raw,
            ece_photos=self.ece_photos,
            robustness=self.robustness,
            runtime_accuracy=self.accuracy,
            runtime_crops=self.crops,
        )
        metadata["calibration"] = {
            "temperature": self.temperature,
            "fitted_on": f"{self.n_images} validation images as stored and {len(PHOTO_CONDITIONS)} photo-like copies "
            f"of each (seed {self.seed}), the two sides weighted equally",
            "seed": self.seed,
            "bins_raw": self.bins_raw,
            "bins": self.bins,
            "bins_photos_raw": self.bins_photos_raw,
            "bins_photos": self.bins_photos,
        }


def read_valid_file(data_root: Path, file: str) -> bytes:
    """A validation file's bytes; one that cannot be read most likely means another dataset was given."""
    try:
        return (Path(data_root) / file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}: is it the run's dataset?") from None


def photo_calibration(model_dir: Path, data_root: Path, valid_files: list[str], seed: int = 0) -> PhotoCalibration:
    """Predict each validation file as stored and each of its photo copies with the runtime's raw probabilities,
    then fit one temperature on both (with the class prior that model.json holds divided out) and measure the
    result.

    `valid_files` are relative to `data_root`, in `class/name` form: the folder is the true class.
    """
    classifier = Classifier(model_dir, raw=True)
    probs: dict[str, list[list[float]]] = {name: [] for name in ["clean", *CONDITIONS]}
    targets = []
    log.info("calibrating on %d validation images and %d copies of each", len(valid_files), len(CONDITIONS))
    for file in valid_files:
        label = file.split("/")[0]
        if label not in classifier.classes:
            raise UsageError(f"{file}: its folder {label!r} is none of the model's classes {classifier.classes}")
        data = read_valid_file(data_root, file)
        try:
            probs["clean"].append(list(classifier.predict(data).probs.values()))
            blobs = photo_copies(decode_image(data), file, seed)
        except ImageError as exc:
            raise UsageError(f"{file}: {exc}") from None
        targets.append(classifier.classes.index(label))
        for name, blob in blobs.items():
            probs[name].append(list(classifier.predict(blob).probs.values()))

    clean, clean_targets = np.array(probs["clean"]), np.array(targets)
    copies = np.concatenate([np.array(probs[name]) for name in PHOTO_CONDITIONS])
    copy_targets = np.tile(clean_targets, len(PHOTO_CONDITIONS))
    prior = class_prior(classifier.metadata)
    temperature = fit_pooled_temperature(clean, clean_targets, copies, copy_targets, prior)
    ece_raw, bins_raw = reliability(clean, clean_targets)
    ece, bins = reliability(apply_temperature(clean, temperature, prior), clean_targets)
    ece_photos_raw, bins_photos_raw = reliability(copies, copy_targets)
    ece_photos, bins_photos = reliability(apply_temperature(copies, temperature, prior), copy_targets)

    def accuracy(name: str) -> float:
        predicted = apply_temperature(np.array(probs[name]), temperature, prior).argmax(axis=1)
        return float((predicted == clean_targets).mean())

    return PhotoCalibration(
        temperature=temperature,
        seed=seed,
        n_images=len(valid_files),
        ece_raw=ece_raw,
        ece=ece,
        ece_photos_raw=ece_photos_raw,
        ece_photos=ece_photos,
        bins_raw=bins_raw,
        bins=bins,
        bins_photos_raw=bins_photos_raw,
        bins_photos=bins_photos,
        robustness={name: accuracy(name) for name in CONDITIONS},
        accuracy=accuracy("clean"),
        crops=classifier.crops,
    )


def calibrate_run(
    model_dir: Path,
    data_root: Path,
    seed: int = 0,
    framing_images: int = FRAMING_IMAGES,
    neighbours: bool = NEIGHBOURS,
    prior: bool = CLASS_PRIOR,
) -> dict:
    """Refit a run directory's framing detector (`trainer.framing`, on `framing_images` training images; 0: none),
    rebuild its memory of training images (`trainer.neighbours`; False: none), record its training split's class
    shares for the runtime to divide out (`prior`; False: none) and then fit its temperature on its validation
    split and the split's photo copies, in place.

    Rewrites `model.json` (framing, neighbours, class prior, temperature, calibration, calibration metrics; nothing
    else), the graph's `features` output, `neighbours.npz` and `reliability.png`, and returns the new metadata.
    Training calls it after the export; `calligraphy calibrate` calls it to bring older runs up to date. The detector
    comes first because it chooses the views, and the memory next, because the temperature is fitted to its blend.
    """
    model_dir, data_root = Path(model_dir), Path(data_root)
    if not model_dir.is_dir():
        raise UsageError(f"model directory {model_dir} does not exist")
    if (model_dir / CHECKSUM_FILE).exists():
        raise UsageError(f"{model_dir} is a stored version, and those are read-only: calibrate the run it came from")
    if not data_root.is_dir():
        raise UsageError(f"data directory {data_root} does not exist")
    try:
        metadata = read_metadata(model_dir)
        valid_files = metadata.get("dataset", {}).get("valid_files")
        if not isinstance(valid_files, list) or not valid_files:
            raise UsageError(f"{model_dir}: model.json lists no dataset.valid_files: not a training run")
        original = (model_dir / METADATA_FILE).read_bytes()
        try:
            fit_framing(model_dir, data_root, framing_images, seed)
            if neighbours:
                build_neighbours(model_dir, data_root)
            else:
                remove_neighbours(model_dir)
            metadata = read_metadata(model_dir)
            metadata.pop("class_prior", None)
            if prior:
                metadata["class_prior"] = training_shares(metadata)
            write_metadata(model_dir, metadata)
            result = photo_calibration(model_dir, data_root, valid_files, seed)
        except BaseException:
            (model_dir / METADATA_FILE).write_bytes(original)  # a failed refit leaves the run as it was
            raise
    except (ModelError, FramingError) as exc:
        raise UsageError(str(exc)) from None
    result.update(metadata)
    write_metadata(model_dir, metadata)
    plot_reliability(metadata, model_dir / RELIABILITY_FILE)
    return metadata


def calibration_summary(metadata: dict) -> str:
    """The calibration and robustness figures of `model.json` in one phrase, for summary lines."""
    metrics = metadata["metrics"]
    photo_accuracy = np.mean([metrics["robustness"][name] for name in PHOTO_CONDITIONS])
    return (
        f"runtime with {metrics['runtime_crops']} crop(s) {metrics['runtime_accuracy']:.3f}; "
        f"T={metadata['temperature']:.2f}: ECE {metrics['ece_raw']:.3f} → {metrics['ece']:.3f} clean, "
        f"{metrics['ece_photos_raw']:.3f} → {metrics['ece_photos']:.3f} on photo copies; "
        f"photo-copy accuracy {photo_accuracy:.3f} (mean of {len(PHOTO_CONDITIONS)} conditions)"
    )


def plot_reliability(metadata: dict, path: Path) -> None:
    """Reliability curves of the clean images and of the photo copies, raw (dashed) and at the fitted T."""
    calibration, metrics = metadata["calibration"], metadata["metrics"]
    fig, ax = plt.subplots(figsize=(4.6, 4.6), dpi=110)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect")
    curves = (
        ("bins_raw", "clean, raw", "tab:blue", ":"),
        ("bins", "clean, at T", "tab:blue", "-"),
        ("bins_photos_raw", "photo copies, raw", "tab:orange", ":"),
        ("bins_photos", "photo copies, at T", "tab:orange", "-"),
    )
    for key, label, colour, style in curves:
        rows = calibration[key]
        confidence, accuracy = [r["confidence"] for r in rows], [r["accuracy"] for r in rows]
        ax.plot(confidence, accuracy, marker="o", ms=3, color=colour, ls=style, label=label)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(
        f"T={metadata['temperature']:.2f}; ECE clean {metrics['ece_raw']:.3f} → {metrics['ece']:.3f},\n"
        f"photo copies {metrics['ece_photos_raw']:.3f} → {metrics['ece_photos']:.3f}",
        fontsize=9,
    )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
