"""Temperature scaling makes over-confident probabilities honest, and the ECE measures it."""

import numpy as np
import pytest

from trainer.calibrate import apply_temperature, fit_pooled_temperature, fit_temperature, reliability
from trainer.report import log_loss


def _overconfident(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) * 4
    logits[np.arange(n), targets] += 3
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True), targets


def test_temperature_fixes_overconfidence():
    probs, targets = _overconfident()
    temperature = fit_temperature(probs, targets)
    assert temperature > 2
    before, _ = reliability(probs, targets)
    after, bins = reliability(apply_temperature(probs, temperature), targets)
    assert before > 0.2 and after < 0.05
    assert sum(b["n"] for b in bins) == len(targets)
    # Rescaling never changes which class wins.
    assert (apply_temperature(probs, temperature).argmax(1) == probs.argmax(1)).all()


def _calibrated(n: int = 4000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(3), size=n)
    return probs, np.array([rng.choice(3, p=p) for p in probs])


def test_calibrated_model_keeps_temperature_near_one():
    assert 0.85 < fit_temperature(*_calibrated()) < 1.15


def test_pooled_fit_gives_clean_images_and_copies_half_the_weight_each():
    clean, clean_targets = _calibrated(500, seed=2)
    copies, copy_targets = _overconfident(4000, seed=3)
    alone = fit_temperature(clean, clean_targets), fit_temperature(copies, copy_targets)
    pooled = fit_pooled_temperature(clean, clean_targets, copies, copy_targets)
    assert alone[0] < pooled < alone[1]
    # A plain pool of 500 clean images and 4000 copies would be almost the copies' fit.
    assert pooled < fit_temperature(np.concatenate([clean, copies]), np.concatenate([clean_targets, copy_targets]))
    # Half the weight whatever the counts: twice as many copies of the same kind move the fit very little.
    doubled = fit_pooled_temperature(clean, clean_targets, np.tile(copies, (2, 1)), np.tile(copy_targets, 2))
    assert doubled == pytest.approx(pooled, rel=0.02)
    # The copies do count: calibrated copies keep the temperature where the clean images put it.
    assert fit_pooled_temperature(clean, clean_targets, *_calibrated(4000, seed=4)) == pytest.approx(alone[0], rel=0.15)


def test_the_temperature_is_fitted_with_the_class_prior_divided_out():
    # Honest probabilities for equal odds, as a network trained on 60 / 10 / 30 % of the classes gives them.
    honest, targets = _calibrated(4000, seed=5)
    prior = np.array([0.6, 0.1, 0.3])
    leaning = honest * prior / (honest * prior).sum(axis=1, keepdims=True)
    fitted = fit_temperature(leaning, targets, prior)
    assert 0.85 < fitted < 1.15
    assert log_loss(apply_temperature(leaning, fitted, prior), targets) < log_loss(
        apply_temperature(leaning, fit_temperature(leaning, targets), None), targets
    )
