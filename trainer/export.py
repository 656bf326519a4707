"""Export a trained learner as the version directory the model store serves (see docs/model-format.md)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

OPSET = 17
PARITY_TOLERANCE = 1e-4
FORMAT_VERSION = 1


class ExportError(RuntimeError):
    """The exported model does not compute what the trained one does."""


class WithSoftmax(nn.Module):
    """The served graph returns probabilities, so no consumer has to know the logits' convention."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(image).float(), dim=1)


def export_onnx(model: nn.Module, path: Path, size: int) -> None:
    """Write an opset-17 graph with a dynamic batch: input `image` [N,3,S,S], output `probs` [N,C]."""
    wrapped = WithSoftmax(model).eval().cpu()
    example = torch.zeros(1, 3, size, size)
    tmp = path.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped,
            (example,),
            str(tmp),
            input_names=["image"],
            output_names=["probs"],
            dynamic_axes={"image": {0: "N"}, "probs": {0: "N"}},
            opset_version=OPSET,
            dynamo=False,
        )
    tmp.replace(path)


def check_parity(model: nn.Module, path: Path, batch: torch.Tensor) -> float:
    """Largest difference between ONNX Runtime's and PyTorch's probabilities; fails loudly past 1e-4."""
    import onnxruntime as ort

    wrapped = WithSoftmax(model).eval().cpu()
    batch = batch.float().cpu()
    with torch.no_grad():
        expected = wrapped(batch).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["probs"], {"image": batch.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if diff > PARITY_TOLERANCE:
        raise ExportError(f"ONNX export disagrees with PyTorch by {diff:.2e} (> {PARITY_TOLERANCE:.0e}) on {path}")
    log.info("ONNX parity: max |ORT - torch| = %.2e over %d images", diff, len(batch))
    return diff
