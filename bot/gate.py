"""Whether a candidate may replace the served model: both are evaluated on the same set, and the candidate
goes live only if its accuracy is not below the served model's by more than the margin."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from model_store.evaluate import Evaluation, evaluate
from model_store.runtime import open_classifier
from model_store.store import ModelStore

log = logging.getLogger(__name__)

# Accuracies are ratios of counts; keep float rounding from turning "equal" into "worse".
TOLERANCE = 1e-9


class GateError(Exception):
    """The candidate could not be judged; the message says why."""


@dataclass(frozen=True)
class Verdict:
    current_version: str
    candidate_version: str
    current: Evaluation
    candidate: Evaluation
    margin: float

    @property
    def promote(self) -> bool:
        return self.candidate.accuracy >= self.current.accuracy - self.margin - TOLERANCE

    def lines(self) -> list[str]:
        """Both accuracies, then each class's recall before and after."""
        change = 100 * (self.candidate.accuracy - self.current.accuracy)
        lines = [
            f"Accuracy: {self.current_version} {self.current.accuracy:.1%} → {self.candidate_version} "
            f"{self.candidate.accuracy:.1%} ({change:+.1f} points; margin {100 * self.margin:.1f})",
            "Recall per class:",
        ]
        before, after = self.current.per_class(), self.candidate.per_class()
        for name in dict.fromkeys([*before, *after]):
            old, new = before.get(name, {}).get("recall"), after.get(name, {}).get("recall")
            lines.append(f"  {name}: {_percent(old)} → {_percent(new)}" + _delta(old, new))
        return lines


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _delta(old: float | None, new: float | None) -> str:
    return "" if old is None or new is None else f" ({100 * (new - old):+.0f})"


def judge(store: ModelStore, candidate_version: str, eval_dir: Path, margin: float) -> Verdict:
    """Evaluate the served model (the store's current, else the packaged default) and the candidate."""
    current = open_classifier(store)
    candidate = open_classifier(store, candidate_version)
    before, after = evaluate(current, eval_dir), evaluate(candidate, eval_dir)
    for name, result in ((current.version, before), (candidate_version, after)):
        if result.n == 0:
            raise GateError(f"no image of the evaluation set {eval_dir} could be scored by {name}")
    verdict = Verdict(current.version, candidate_version, before, after, margin)
    log.info(
        "%s %.3f vs %s %.3f on %d images: %s",
        current.version,
        before.accuracy,
        candidate_version,
        after.accuracy,
        after.n,
        "promote" if verdict.promote else "keep serving " + current.version,
    )
    return verdict
