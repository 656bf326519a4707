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


def finetune_configs(config: TrainConfig) -> list[TrainConfig]:
    """The soup's fine-tunes: one more stage at the last size each, taking the one-character shares in turn; the
    fine-tunes of one share get the train seeds a soup's members would, so the first of each trains as a
    single `--init-from` run would."""
    shares = config.finetune_p_char
    seeds = member_seeds(config.train_seed, -(-config.finetune_members // len(shares)))
    return [
        replace(
            config,
            sizes=config.sizes[-1:],
            epochs_unfrozen=config.finetune_epochs,
            p_char=shares[i % len(shares)],
            train_seed=seeds[i // len(shares)],
        )
        for i in range(config.finetune_members)
    ]


def _average(results: list[TrainResult]) -> TrainResult:
    """The first result, holding the average weights of all."""
    soup = results[0]
    soup.learn.model.load_state_dict(average_weights([result.learn.model for result in results]))
    return soup


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
    if len(results) == 1:
        return results[0]
    member_accuracy = [validation_accuracy(result.learn) for result in results]
    history = [dict(row, member=m) for m, result in enumerate(results) for row in result.history]
    stage_seconds = [sum(seconds) for seconds in zip(*(r.stage_seconds for r in results), strict=True)]
    soup = _average(results)
    soup.member_accuracy, soup.history, soup.stage_seconds = member_accuracy, history, stage_seconds
    return soup


def finetune_soup(dataset: Dataset, valid_idx: list[int], config: TrainConfig, soup: TrainResult) -> TrainResult:
    """Fine-tune `soup` `config.finetune_members` times (`finetune_configs`) and return the average of those.

    Each fine-tune starts from the soup's weights, so they share a basin and average like members do; the
    one-character shares make them differ in what they see, not only in their data order. The history goes on
    after the soup's as one more stage per fine-tune (`member` counts on), and `finetune_accuracy` holds each
    fine-tune's own validation accuracy.
    """
    start = {key: tensor.detach().clone() for key, tensor in soup.learn.model.state_dict().items()}
    configs = finetune_configs(config)
    results = []
    for i, finetune in enumerate(configs):
        log.info(
            "fine-tune %d of %d (one-character share %s, train seed %s)",
            i + 1,
            len(configs),
            finetune.p_char,
            finetune.train_seed,
        )
        results.append(train(dataset, valid_idx, finetune, start))
    accuracy = [validation_accuracy(result.learn) for result in results]
    history = soup.history + [
        dict(row, member=config.members + i, stage=len(config.sizes))
        for i, result in enumerate(results)
        for row in result.history
    ]
    stage_seconds = [*soup.stage_seconds, sum(result.stage_seconds[0] for result in results)]
    finetuned = _average(results)
    finetuned.member_accuracy, finetuned.finetune_accuracy = soup.member_accuracy, accuracy
    finetuned.history, finetuned.stage_seconds = history, stage_seconds
    return finetuned


def train_recipe(dataset: Dataset, valid_idx: list[int], config: TrainConfig) -> TrainResult:
    """The whole recipe: the soup of `members`, then the soup of its `finetune_members` fine-tunes if any."""
    soup = train_soup(dataset, valid_idx, config)
    return finetune_soup(dataset, valid_idx, config, soup) if config.finetune_members else soup
