"""How many data-loader processes should training use? Time one short member at each count.

Training is loader-bound on a GPU, and fastai starts its loader processes afresh for every epoch, so more of them
is not always faster. Each count trains the same single member (one frozen and two unfrozen epochs per size) on
the grouped split, with the other settings at the trainer's defaults. Run, on the machine that will train:

    .venv/bin/python benchmarks/loader_workers.py --data ../shared/data/calligraphy-3 --workers 4,8,15

The first count also pays for starting the device (CUDA, cuDNN): put the count to beat first, or repeat it last.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from trainer.config import TrainConfig
from trainer.data import exclude_from_training, group_ids, grouped_split, read_exclusions, scan_dataset
from trainer.train import resolve_device, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="DIR/<class>/<image> folders")
    parser.add_argument("--workers", default="4,8", help="comma-separated loader process counts (default 4,8)")
    parser.add_argument("--sizes", default="128,256", help="comma-separated stage sizes (default 128,256)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args()

    config = TrainConfig(
        data=args.data,
        out=Path("unused"),
        sizes=tuple(int(s) for s in args.sizes.split(",")),
        epochs_frozen=1,
        epochs_unfrozen=2,
        members=1,
        finetune_members=0,
        device=args.device,
    )
    dataset = scan_dataset(config.data)
    valid_idx = grouped_split(dataset, group_ids(dataset), config.valid_pct, config.seed)
    train_set, train_valid_idx = exclude_from_training(dataset, valid_idx, read_exclusions(config.exclude))
    device = resolve_device(args.device)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{len(train_set.items)} images, sizes {list(config.sizes)}, 3 epochs per size, on {device_name}")
    for workers in (int(w) for w in args.workers.split(",")):
        started = time.perf_counter()
        result = train(train_set, train_valid_idx, dataclasses.replace(config, num_workers=workers))
        stages = ", ".join(f"{s:.1f}" for s in result.stage_seconds)
        print(f"{workers:3d} loader processes: {time.perf_counter() - started:6.1f} s (stages {stages} s)", flush=True)


if __name__ == "__main__":
    main()
