"""Small real ONNX models in the version-directory format, for tests that must not wait for training.

The graph averages each colour channel and maps it linearly to the classes, so the prediction is a
known function of the image: a pure red image is class 0, green class 1, blue class 2, grey is uniform.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DEFAULT_CLASSES = ("kaishu", "lishu", "xiaozhuan")


def make_model_dir(
    path: Path,
    *,
    classes: tuple[str, ...] = DEFAULT_CLASSES,
    size: int = 32,
    gain: float = 2.0,
    accuracy: float = 0.8,
) -> Path:
    """Write model.onnx and model.json for a channel-mean classifier into `path`."""
    path.mkdir(parents=True, exist_ok=True)
    n = len(classes)
    weight = np.zeros((3, n), dtype=np.float32)
    for i in range(n):
        weight[i % 3, i] = gain
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "weight", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "channel_mean_classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", n])],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(np.zeros(n, dtype=np.float32), "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path / "model.onnx")
    metadata = {
        "format_version": 1,
        "classes": list(classes),
        "input_size": size,
        "resize_method": "squish",
        "resample": "bilinear",
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "temperature": 1.0,
        "tta": {"crops": 0},
        "arch": "channel-mean-test-model",
        "metrics": {
            "accuracy": accuracy,
            "split": "grouped",
            "per_class": {c: {"precision": accuracy, "recall": accuracy, "n": 10} for c in classes},
        },
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    (path / "model.json").write_text(json.dumps(metadata, indent=2))
    return path
