"""Trainable weights from a served model version, so a run can continue from the model the bot serves.

A version directory keeps only `model.onnx`, whose export folded every convolution's BatchNorm into the
convolution (weights and a bias). The network is rebuilt with each BatchNorm set to what keeps the folded
function: in eval mode it adds the folded bias back, exactly; its running statistics are measured on
training batches and its scale and shift chosen to undo them, so that in train mode, where BatchNorm uses
each batch's own statistics, the network still computes about what was served. The head's BatchNorm1d
layers and bias-free linear layers survive the export as they were.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model_store.metadata import ModelError, read_metadata

log = logging.getLogger(__name__)

STAT_BATCHES = 8
PARITY_TOLERANCE = 1e-4


class ServedWeightsError(ValueError):
    """The version cannot be turned back into this network's weights."""


def is_model_version(path: Path) -> bool:
    """A version directory as the store keeps it, which `--init-from` can start from without a learner.pkl."""
    return (Path(path) / "model.json").is_file() and (Path(path) / "model.onnx").is_file()


def load_served_weights(model: nn.Module, version_dir: Path, arch: str, classes: list[str], batches: Iterable) -> None:
    """Load `version_dir`'s weights into `model` (a fastai body + head of `arch`), measuring its BatchNorm
    statistics on `batches` (x, y pairs of training images) and checking the result against ONNX Runtime."""
    import onnx
    from onnx import numpy_helper

    try:
        meta = read_metadata(version_dir)
    except ModelError as error:
        raise ServedWeightsError(str(error)) from None
    if "arch" not in meta:
        raise ServedWeightsError(f"{version_dir}: model.json names no architecture ('arch') to rebuild")
    if meta["arch"] != arch:
        raise ServedWeightsError(f"{version_dir} is a {meta['arch']} model, not {arch}")
    if list(meta["classes"]) != list(classes):
        raise ServedWeightsError(f"{version_dir} was trained on classes {meta['classes']}, not {classes}")
    graph = onnx.load(str(Path(version_dir) / "model.onnx")).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    convs = [_node_tensors(node, tensors) for node in graph.node if node.op_type == "Conv"]
    matmuls = [_node_tensors(node, tensors)[0] for node in graph.node if node.op_type == "MatMul"]
    body, head = model[0], model[1]
    pairs = _conv_bn_pairs(body)
    _check_count("convolutions", len(convs), len(pairs), version_dir)
    if any(len(tensors_of_conv) != 2 for tensors_of_conv in convs):
        raise ServedWeightsError(f"{version_dir}: a convolution without its folded BatchNorm's bias")
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    _check_count("linear layers", len(matmuls), len(linears), version_dir)
    with torch.no_grad():
        for (conv, bn), (weight, bias) in zip(pairs, convs, strict=True):
            _copy(conv.weight, weight, version_dir)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            _copy(bn.bias, bias, version_dir)
        for linear, weight in zip(linears, matmuls, strict=True):
            if linear.bias is not None:
                raise ServedWeightsError(f"{version_dir}: the head's linear layers have biases the graph lacks")
            _copy(linear.weight, weight.T, version_dir)
        for name, tensor in head.state_dict().items():
            key = f"model.1.{name}"
            if key in tensors:
                _copy(tensor, tensors[key], version_dir)
    _measure_statistics(model, [bn for _, bn in pairs], batches)
    _check_parity(model, Path(version_dir) / "model.onnx", meta["input_size"], batches)
    log.info("continuing from the served model %s", version_dir)


def _node_tensors(node, tensors: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [tensors[name] for name in node.input[1:] if name in tensors]


def _conv_bn_pairs(body: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """Each convolution with the BatchNorm that follows it, in the order the forward pass runs them."""
    layers = [m for m in body.modules() if isinstance(m, nn.Conv2d | nn.BatchNorm2d)]
    pairs = list(zip(layers[::2], layers[1::2], strict=False))
    if len(layers) % 2 or not all(isinstance(c, nn.Conv2d) and isinstance(b, nn.BatchNorm2d) for c, b in pairs):
        raise ServedWeightsError("this backbone does not follow every convolution with a BatchNorm")
    return pairs


def _check_count(what: str, found: int, expected: int, version_dir: Path) -> None:
    if found != expected:
        raise ServedWeightsError(f"{version_dir} has {found} {what}, this network {expected}")


def _copy(target: torch.Tensor, source: np.ndarray, version_dir: Path) -> None:
    if tuple(source.shape) != tuple(target.shape):
        raise ServedWeightsError(f"{version_dir}: a tensor of shape {source.shape} does not fit {tuple(target.shape)}")
    target.copy_(torch.tensor(np.array(source)))


def _measure_statistics(model: nn.Module, norms: list[nn.BatchNorm2d], batches: Iterable) -> None:
    """Set each BatchNorm's running statistics to those of its input on training batches, and its scale and
    shift so that it still adds only the folded bias: y -> (y - m) / s * s + (b + m)."""
    sums = {bn: [0.0, 0.0, 0] for bn in norms}

    def record(bn, inputs):
        x = inputs[0].detach().double()
        s = sums[bn]
        s[0] = s[0] + x.sum(dim=(0, 2, 3))
        s[1] = s[1] + (x * x).sum(dim=(0, 2, 3))
        s[2] += x.numel() // x.shape[1]

    hooks = [bn.register_forward_pre_hook(record) for bn in norms]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x, *_ in itertools.islice(batches, STAT_BATCHES):
                model(x.as_subclass(torch.Tensor).float().cpu())
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    with torch.no_grad():
        for bn, (total, squares, count) in sums.items():
            if not count:
                raise ServedWeightsError("no training batch to measure the BatchNorm statistics on")
            mean = total / count
            var = (squares / count - mean * mean).clamp_min(0.0)
            bn.bias.add_(mean.float())
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())


def _check_parity(model: nn.Module, onnx_path: Path, size: int, batches: Iterable) -> None:
    """The rebuilt network must compute the served probabilities, or the run would start from something else."""
    import onnxruntime as ort

    x = next(iter(batches))[0].as_subclass(torch.Tensor).float().cpu()[:4]
    x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        expected = torch.softmax(model(x).float(), dim=1).numpy()
    model.train(was_training)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(["probs"], {"image": x.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if diff > PARITY_TOLERANCE:
        raise ServedWeightsError(f"{onnx_path}: the rebuilt network differs from the served one by {diff:.2e}")
    log.info("served weights: max |ORT - torch| = %.2e", diff)
