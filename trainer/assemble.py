"""A model soup of runs trained separately: what `--members` does in one command, from finished runs.

Members can then be trained on different days or machines, and a recipe variant can join a soup of the default
recipe, as long as every member started from the same weights (the same `--seed`, arch and split). The soup is
exported, measured on the members' validation split and calibrated exactly as a trained run is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from calligraphy.errors import UsageError
from model_store.images import ImageError
from model_store.metadata import read_metadata, write_metadata
from model_store.runtime import Classifier
from trainer import calibrate, export, report
from trainer.soup import average_weights
from trainer.train import load_run_learner

log = logging.getLogger(__name__)

# What members must share for their average to be a model of the same data: the same start, split and classes.
SHARED_FIELDS = ("classes", "arch", "input_size", "resize_method", "mean", "std")
SHARED_TRAINING = ("seed", "sizes", "valid_pct")


def _check_members(runs: Sequence[Path], metas: Sequence[dict]) -> None:
    first = metas[0]
    for run, meta in zip(runs[1:], metas[1:], strict=True):
        for key in SHARED_FIELDS:
            if meta.get(key) != first.get(key):
                raise UsageError(f"{run} differs from {runs[0]} in {key}: {meta.get(key)} vs {first.get(key)}")
        for key in SHARED_TRAINING:
            if meta["training"].get(key) != first["training"].get(key):
                raise UsageError(f"{run} was trained with another {key} than {runs[0]}: it did not start alike")
        if meta["dataset"]["valid_files"] != first["dataset"]["valid_files"]:
            raise UsageError(f"{run} was validated on other images than {runs[0]}")


def _whole_image_probs(out: Path, data: Path, files: Sequence[str]) -> np.ndarray:
    """Raw probabilities of the exported soup on whole images, as training measures a run before calibrating."""
    classifier = Classifier(out, crops=0, raw=True)
    probs = []
    for file in files:
        try:
            probs.append(list(classifier.predict(calibrate.read_valid_file(data, file)).probs.values()))
        except ImageError as exc:
            raise UsageError(f"{file}: {exc}") from None
    return np.array(probs)


def assemble_soup(runs: Sequence[Path], out: Path, data: Path, *, export_learner: bool = False) -> dict:
    """Average the runs' `learner.pkl` weights into a new run directory `out`; return its metadata."""
    runs = [Path(r) for r in runs]
    if len(runs) < 2:
        raise UsageError("a soup needs at least two runs")
    if Path(out).exists():
        raise UsageError(f"{out} exists: a soup goes to a new directory")
    metas = []
    for run in runs:
        if not (run / "model.json").is_file():
            raise UsageError(f"{run} is not a training run (no model.json)")
        metas.append(read_metadata(run))
    _check_members(runs, metas)
    files = metas[0]["dataset"]["valid_files"]
    missing = [file for file in files if not (Path(data) / file).is_file()]
    if missing:
        raise UsageError(
            f"{data} lacks {len(missing)} of the runs' {len(files)} validation images (e.g. {missing[0]}): "
            "is it their dataset?"
        )
    learners = [load_run_learner(run) for run in runs]
    model = learners[0].model.eval()
    model.load_state_dict(average_weights([learn.model for learn in learners]))

    out = Path(out)
    out.mkdir(parents=True)
    size = metas[0]["input_size"]
    export.export_onnx(model, out / "model.onnx", size)
    parity = export.check_parity(model, out / "model.onnx", torch.randn(8, 3, size, size))
    if export_learner:
        learners[0].export(out.resolve() / "learner.pkl")

    metadata = json.loads(json.dumps(metas[0]))
    metadata["temperature"] = 1.0  # until calibrate_run below fits it
    metadata.pop("calibration", None)
    metadata.pop("framing", None)  # read the members' features; calibrate_run fits the soup's own
    metadata.pop("neighbours", None)  # likewise: calibrate_run builds the soup's own memory
    write_metadata(out, metadata)
    classes = metadata["classes"]
    targets = np.array([classes.index(f.split("/")[0]) for f in files])
    metrics = report.classification_metrics(_whole_image_probs(out, Path(data), files), targets, classes)
    metrics["split"] = "grouped"
    metrics["member_accuracy"] = [meta["metrics"]["accuracy"] for meta in metas]
    history = [dict(row, member=m) for m, meta in enumerate(metas) for row in meta.get("history", [])]
    timings = [meta["timings"] for meta in metas]
    metadata.update(
        metrics=metrics,
        history=history,
        assembled_from=[{"run": str(run), "training": meta["training"]} for run, meta in zip(runs, metas, strict=True)],
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    metadata["onnx"]["parity_max_abs_diff"] = parity
    metadata["training"]["members"] = len(runs)
    metadata["timings"] = {
        "train_and_export_s": round(sum(t.get("train_and_export_s", 0.0) for t in timings), 1),
        "total_s": round(sum(t.get("total_s", t.get("train_and_export_s", 0.0)) for t in timings), 1),
        "device": ", ".join(sorted({t.get("device", "?") for t in timings})),
    }
    report.write_plots(metrics, history, classes, out)
    write_metadata(out, metadata)
    members = ", ".join(f"{a:.3f}" for a in metrics["member_accuracy"])
    log.info("soup of %d runs: whole-image accuracy %.3f (members %s)", len(runs), metrics["accuracy"], members)
    return calibrate.calibrate_run(out, data)
