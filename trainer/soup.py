"""A uniform model soup: the weights of runs that started from the same weights, averaged.

Runs of one recipe that differ only in their data order and augmentation (`train_seed`) end in one basin of
the loss, so their average is itself a good model: it generalises like an ensemble of them but costs one
model's inference (Wortsman et al., 2022, "Model soups"). Runs from different starting heads do not average.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from trainer.config import TrainConfig
from trainer.data import Dataset
from trainer.train import TrainResult, train, validation_accuracy

log = logging.getLogger(__name__)


def average_weights(models: Sequence[nn.Module]) -> dict[str, torch.Tensor]:
    """The mean of each floating-point tensor; integer ones (BatchNorm's batch counters) come from the first."""
    if not models:
        raise ValueError("a soup needs at least one model")
    states = [model.state_dict() for model in models]
    keys = list(states[0])
    if any(list(state) != keys for state in states[1:]):
        raise ValueError("the models have different layers and cannot be averaged")
    return {
        key: torch.stack([state[key].float() for state in states]).mean(0).to(states[0][key].dtype)
        if states[0][key].is_floating_point()
        else states[0][key].clone()
        for key in keys
    }


def member_seeds(train_seed: int | None, members: int) -> list[int | None]:
    """The first member trains exactly as a single run would; member i reseeds with `train_seed` + i."""
    return [train_seed] + [(train_seed or 0) + i for i in range(1, members)]


def train_soup(dataset: Dataset, valid_idx: list[int], config: TrainConfig) -> TrainResult:
    """Train `config.members` runs from the same start and return the first, holding their average weights.

    The result's history holds every member's epochs (`member` says whose) and `member_accuracy` each member's
    own validation accuracy, so a run shows what averaging gained.
    """
    results = []
    for member, seed in enumerate(member_seeds(config.train_seed, config.members)):
        if config.members > 1:
            log.info("soup member %d of %d (train seed %s)", member + 1, config.members, seed)
        results.append(train(dataset, valid_idx, replace(config, train_seed=seed)))
    soup = results[0]
    if len(results) > 1:
        soup.member_accuracy = [validation_accuracy(result.learn) for result in results]
        soup.learn.model.load_state_dict(average_weights([result.learn.model for result in results]))
        soup.history = [dict(row, member=m) for m, result in enumerate(results) for row in result.history]
        soup.stage_seconds = [sum(seconds) for seconds in zip(*(r.stage_seconds for r in results), strict=True)]
    return soup
