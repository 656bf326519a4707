"""Is the picture one or a few characters, or a page? A linear read of the model's own features, fitted on framings
of the training images.

Every model here learned from pages, and one character is its weakest view; tiled into a page (3 × 3) the same
character is read much better, while a page tiled loses 10–20 points (docs/experiments.md, session 8). Hand-made
cues (stroke width, ink columns, character boxes) could not tell the two framings apart; the network's last hidden
layer can. So the run's graph gets that layer as a second output (`features`), and a logistic regression on it,
fitted on photo copies of *training* images (one character and a few characters against whole pages and their
other copies), goes into `model.json`. The runtime then picks the second view per picture
(`model_store.framing.Framing`).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from calligraphy.errors import UsageError
from model_store.framing import Framing
from model_store.images import decode_image
from model_store.metadata import MODEL_FILE, read_metadata, write_metadata
from model_store.runtime import FEATURES_NAME, OUTPUT_NAME, Classifier
from trainer.config import FRAMING_IMAGES
from trainer.data import scan_dataset
from trainer.photo_copies import photo_copies

log = logging.getLogger(__name__)

FEW_CHARACTER_CONDITIONS = ("one character", "few characters")
TILES = 3
# L2 strength as scikit-learn's C on standardised features. C = 0.01, 0.1 and 1 flag pages and single characters
# within a few points of each other (session 8); 0.1 is the middle one, not a tuned value.
REGULARISATION_C = 0.1
# Nodes between the last linear layer and the softmax that do not change which tensor holds the features.
_PASS_THROUGH = {"Cast", "Identity", "Add"}


class FramingError(RuntimeError):
    """The graph has no linear layer before its softmax, so it has no features to read."""


def expose_features(model_path: Path) -> int:
    """Give the graph the last linear layer's input as a second output, `features`, in place; return its width.

    The layer is found by walking back from the softmax that makes `probs`; graphs that already have the output
    are left as they are.
    """
    model = onnx.load(model_path)
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    node = producers.get(OUTPUT_NAME)
    while node is not None and node.op_type not in ("MatMul", "Gemm"):
        if node.op_type != "Softmax" and node.op_type not in _PASS_THROUGH:
            node = None
            break
        node = next((producers[i] for i in node.input if i in producers), None)
    if node is None or node.input[1] not in initializers:
        raise FramingError(f"{model_path}: no linear layer feeds the softmax of '{OUTPUT_NAME}'")
    weight = initializers[node.input[1]]
    transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
    width = int(weight.shape[1] if transposed else weight.shape[0])
    if FEATURES_NAME in {o.name for o in graph.output}:
        return width
    graph.node.append(helper.make_node("Identity", [node.input[0]], [FEATURES_NAME], name="framing_features"))
    graph.output.append(helper.make_tensor_value_info(FEATURES_NAME, TensorProto.FLOAT, ["N", width]))
    onnx.checker.check_model(model)
    tmp = model_path.with_suffix(".onnx.tmp")
    onnx.save(model, tmp)
    tmp.replace(model_path)
    return width


def fit_logistic(features: np.ndarray, labels: np.ndarray, c: float = REGULARISATION_C) -> tuple[np.ndarray, float]:
    """Weights and bias of an L2 logistic regression with balanced classes (Newton's method on standardised
    features), returned for the raw features: p = sigmoid(features @ w + b)."""
    if labels.all() or not labels.any():
        raise FramingError("the framings need both pictures of a few characters and pages")
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    x = np.hstack([(features - mean) / std, np.ones((len(features), 1))])
    y = labels.astype(np.float64)
    share = y.mean()
    sample = np.where(y == 1, 0.5 / share, 0.5 / (1 - share))  # balanced: each side half the weight
    penalty = np.full(x.shape[1], 1.0 / c)
    penalty[-1] = 0.0  # no penalty on the bias
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-(x @ w)))
        gradient = x.T @ (sample * (p - y)) + penalty * w
        hessian = (x * (sample * p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = w[:-1] / std
    return weights, float(w[-1] - weights @ mean)


def training_files(data_root: Path, valid_files: list[str], n: int, seed: int) -> list[str]:
    """Up to `n` of the dataset's files outside the validation split, drawn with `seed`."""
    dataset = scan_dataset(data_root)
    valid = set(valid_files)
    files = [f for f in dataset.relative_files() if f not in valid]
    return sorted(random.Random(seed).sample(files, min(n, len(files))))


def fit_framing(model_dir: Path, data_root: Path, n_images: int = FRAMING_IMAGES, seed: int = 0) -> dict:
    """Expose the run's features, fit the detector on photo copies of training images and write model.json's
    `framing` block; return that block. `n_images` 0, or a model that averages no crop with the whole image (no
    second view to choose), removes the detector instead."""
    metadata = read_metadata(model_dir)
    metadata.pop("framing", None)
    write_metadata(model_dir, metadata)  # the features are read with the detector-less runtime
    if not n_images or not metadata.get("tta", {}).get("crops", 0):
        return {}
    width = expose_features(model_dir / MODEL_FILE)
    classifier = Classifier(model_dir, crops=0, raw=True)
    files = training_files(data_root, metadata["dataset"]["valid_files"], n_images, seed)
    if not files:
        raise UsageError(f"{data_root} has no images outside {model_dir}'s validation split to fit framing on")
    rows, labels, conditions = [], [], []
    for file in files:
        copies = photo_copies(decode_image((Path(data_root) / file).read_bytes()), file, seed)
        for name, blob in copies.items():
            rows.append(classifier.features(decode_image(blob, max_side=classifier.decode_side)))
            labels.append(name in FEW_CHARACTER_CONDITIONS)
            conditions.append(name)
    features, y = np.array(rows), np.array(labels)
    weights, bias = fit_logistic(features, y)
    flagged = Framing(weights=weights, bias=bias, tiles=TILES).few_characters(features)
    share = {name: float(flagged[[c == name for c in conditions]].mean()) for name in dict.fromkeys(conditions)}
    block = {
        "tiles": TILES,
        "bias": bias,
        "weights": [float(w) for w in weights],
        "fitted_on": f"{len(files)} training images and {len(copies)} photo-like copies of each (seed {seed}); "
        f"'{' and '.join(FEW_CHARACTER_CONDITIONS)}' are few characters, the rest pages",
        "seed": seed,
        "features": width,
        "flagged": share,
    }
    metadata["framing"] = block
    write_metadata(model_dir, metadata)
    log.info(
        "framing detector on %d copies: flags %.0f%% of one-character and %.0f%% of original pages",
        len(rows),
        100 * share["one character"],
        100 * share["original"],
    )
    return block
