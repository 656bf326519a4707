"""Honest probabilities: temperature scaling fitted on the validation split, and how well it worked."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from model_store.runtime import calibrate as apply_temperature
from trainer.report import log_loss, plt


def fit_temperature(probs: np.ndarray, targets: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises validation log loss (golden-section search on log T)."""
    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        loss_a = log_loss(apply_temperature(probs, np.exp(a)), targets)
        if loss_a < log_loss(apply_temperature(probs, np.exp(b)), targets):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def reliability(probs: np.ndarray, targets: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error and the per-bin confidence/accuracy it is made of."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    edges = np.linspace(0, 1, bins + 1)
    rows, ece = [], 0.0
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if not in_bin.any():
            continue
        acc, conf = float(correct[in_bin].mean()), float(confidence[in_bin].mean())
        ece += in_bin.mean() * abs(acc - conf)
        rows.append(
            {
                "low": float(low),
                "high": float(high),
                "n": int(in_bin.sum()),
                "accuracy": acc,
                "confidence": conf,
            }
        )
    return float(ece), rows


def plot_reliability(before: list[dict], after: list[dict], path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=110)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect")
    for rows, label in ((before, "raw"), (after, "temperature-scaled")):
        ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o", label=label)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
