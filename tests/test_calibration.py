"""Temperature scaling makes over-confident probabilities honest, and the ECE measures it."""

import numpy as np

from trainer.calibrate import apply_temperature, fit_temperature, reliability


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


def test_calibrated_model_keeps_temperature_near_one():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=4000)
    targets = np.array([rng.choice(3, p=p) for p in probs])
    assert 0.85 < fit_temperature(probs, targets) < 1.15
