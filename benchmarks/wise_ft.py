"""A fine-tuned model averaged with the model it started from (WiSE-FT), as a new version directory.

Averaging a fine-tune's weights with its start's tends to keep the start's robustness to shifted inputs and much
of the fine-tune's gain (Wortsman et al., "Robust fine-tuning of zero-shot models", 2022). Both graphs must be
exports of one network (same initializer names and shapes), such as a run continued with `--init-from` from
the other. The fine-tune's directory is copied and each initializer set to `weight` × the fine-tune's plus
(1 − `weight`) × the start's; the convolutions carry their folded BatchNorms, so this interpolates the
BatchNorm-free networks the graphs compute. Refit the framing detector and the temperature afterwards
(docs/experiments.md, session 13). Run:

    .venv/bin/python benchmarks/wise_ft.py --start model_store/default_model --finetuned runs/r40 --out runs/r40w
    .venv/bin/calligraphy calibrate --model runs/r40w --data ../shared/data/calligraphy-3
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import onnx
from onnx import numpy_helper


def interpolate(start: Path, finetuned: Path, out: Path, weight: float) -> int:
    """Write the averaged version to `out`; return how many tensors were averaged."""
    base = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(start / "model.onnx")).graph.initializer}
    model = onnx.load(str(finetuned / "model.onnx"))
    tuned = list(model.graph.initializer)
    if {t.name for t in tuned} != set(base):
        raise SystemExit(f"{start} and {finetuned} are not exports of one network: their tensors differ")
    for tensor in tuned:
        value = numpy_helper.to_array(tensor)
        if value.shape != base[tensor.name].shape:
            raise SystemExit(f"{tensor.name}: {value.shape} in {finetuned}, {base[tensor.name].shape} in {start}")
        mixed = (weight * value + (1 - weight) * base[tensor.name]).astype(value.dtype)
        tensor.CopyFrom(numpy_helper.from_array(mixed, tensor.name))
    shutil.copytree(finetuned, out)
    onnx.save(model, str(out / "model.onnx"))
    return len(tuned)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=Path, required=True, help="the version the fine-tune started from")
    parser.add_argument("--finetuned", type=Path, required=True, help="the fine-tuned run's version directory")
    parser.add_argument("--out", type=Path, required=True, help="new version directory (must not exist)")
    parser.add_argument("--weight", type=float, default=0.5, help="the fine-tune's share (default %(default)s)")
    args = parser.parse_args()
    n = interpolate(args.start, args.finetuned, args.out, args.weight)
    print(f"{args.out}: {n} tensors averaged, {args.weight:g} × {args.finetuned} + {1 - args.weight:g} × {args.start}")


if __name__ == "__main__":
    main()
