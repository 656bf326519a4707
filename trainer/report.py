"""What a run measured: per-class figures, the confusion matrix and the training curves, as data and pictures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from model_store.evaluate import Evaluation


def log_loss(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log probability of the true class (0.0 for no samples)."""
    if not len(targets):
        return 0.0
    return float(-np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-12, 1.0)).mean())


def classification_metrics(probs: np.ndarray, targets: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, log loss, per-class precision/recall and the confusion matrix (rows: true class).

    Precision and recall come from the model store's `Evaluation`, so training and `calligraphy evaluate`
    report the same figures the same way.
    """
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(confusion, (targets, probs.argmax(axis=1)), 1)
    evaluation = Evaluation(classes=list(classes), confusion=confusion)
    return {
        "accuracy": evaluation.accuracy,
        "valid_loss": log_loss(probs, targets),
        "n_valid": evaluation.n,
        "per_class": evaluation.per_class(),
        "confusion": confusion.tolist(),
    }


def plot_confusion(confusion: list[list[int]], classes: list[str], path: Path, title: str) -> None:
    matrix = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(classes), 1.2 + 1.1 * len(classes)), dpi=110)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, str(value), ha="center", va="center", color="white" if value > threshold else "black")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_plots(metrics: dict, history: list[dict], classes: list[str], out: Path) -> None:
    """A run's confusion matrix and training curves, next to its model."""
    plot_confusion(
        metrics["confusion"],
        classes,
        out / "confusion.png",
        f"grouped validation split: accuracy {metrics['accuracy']:.3f} (n={metrics['n_valid']})",
    )
    plot_history(history, out / "history.png")


def plot_history(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch across all stages, with stage boundaries marked; a soup's members each
    get their own curves, and its fine-tunes go on from where the first member's stages end."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    curves: dict[int, list[dict]] = {}
    for h in history:
        curves.setdefault(h.get("member", 0), []).append(h)
    first = next(iter(curves.values()), [])
    finetunes = [m for m, rows in curves.items() if rows[0]["stage"] > first[-1]["stage"]]
    for member, rows in curves.items():
        offset = sum(h["stage"] < rows[0]["stage"] for h in first)
        steps = np.arange(offset + 1, offset + len(rows) + 1)
        if member in finetunes:
            suffix = f", fine-tune {finetunes.index(member) + 1}"
        else:
            suffix = f", member {member + 1}" if len(curves) > 1 else ""
        colour = f"C{member % 10}"
        loss_ax.plot(steps, [h["train_loss"] for h in rows], color=colour, label="train loss" + suffix)
        loss_ax.plot(steps, [h["valid_loss"] for h in rows], color=colour, ls="--", label="valid loss" + suffix)
        acc_ax.plot(steps, [h["accuracy"] for h in rows], color=colour, label="valid accuracy" + suffix)
    lead = first + (curves[finetunes[0]] if finetunes else [])
    for i in range(1, len(lead)):
        if (lead[i]["stage"], lead[i]["phase"]) != (lead[i - 1]["stage"], lead[i - 1]["phase"]):
            for ax in (loss_ax, acc_ax):
                ax.axvline(i + 0.5, color="grey", lw=0.6, ls="--")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch (all stages)")
        ax.legend(fontsize=7)
    acc_ax.set_ylim(0, 1)
    labels = sorted({f"{h['size']}px {h['phase']}" for h in history})
    fig.suptitle("stages: " + ", ".join(labels), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
