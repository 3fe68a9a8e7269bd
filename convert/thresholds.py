"""Recall of the real classes and false alarms on the background class, per threshold.

What someone watching a camera needs from a model with a background class: how
many photos of a real class keep their right label (recall), and how many
photos of nothing get a real label (false alarms), as the threshold rises. The
runner answers ``unknown`` when the top score is below the threshold, so both
numbers fall with it.

Numpy only: ``train`` (its report and recommended threshold, through
:mod:`train.thresholds`) and ``python -m convert evaluate`` share it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# The thresholds every report lists (0.0: no threshold, the plain top-1 answer).
THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
# The recommendation is never below this: under 0.5 the answer is less likely than
# all the other classes together, which is no answer to raise an alarm on. It also
# keeps a margin when the validation background photos show no false alarm at all
# (a few dozen photos cannot show a rate near 0 on photos from other places).
MIN_RECOMMENDED = 0.5


@dataclass(frozen=True)
class ThresholdRow:
    """One threshold's counts on a labelled set.

    Attributes:
        threshold: the score (0-1) below which the answer is ``unknown``.
        recall: share of real-class photos given their right label at or above it (0-1).
        false_alarm: share of background photos given a real label at or above it (0-1).
        correct, positives: real-class photos with the right label, and all of them.
        false_alarms, negatives: background photos given a real label, and all of them.
    """

    threshold: float
    recall: float
    false_alarm: float
    correct: int
    positives: int
    false_alarms: int
    negatives: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ThresholdTable:
    """The rows for every threshold and the recommended one.

    ``rule`` says in words how ``recommended`` was chosen (it goes into the report).
    """

    background_label: str
    rows: tuple[ThresholdRow, ...]
    recommended: float
    max_false_alarm: float
    rule: str

    def row(self, threshold: float) -> ThresholdRow:
        return next(r for r in self.rows if r.threshold == threshold)

    def to_dict(self) -> dict:
        return {
            "background_label": self.background_label,
            "recommended": self.recommended,
            "max_false_alarm": self.max_false_alarm,
            "rule": self.rule,
            "rows": [r.to_dict() for r in self.rows],
        }


def threshold_rows(
    probabilities: np.ndarray, y_true: np.ndarray, background_index: int, thresholds=THRESHOLDS
) -> tuple[ThresholdRow, ...]:
    """Recall and false alarms of ``probabilities`` ``(N, K)`` against ``y_true`` ``(N,)`` per threshold.

    A photo's answer is its top class when the top score is at least the
    threshold, else ``unknown``; ``background_index`` is the background class.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true)
    top = probabilities.argmax(axis=1)
    score = probabilities.max(axis=1)
    real = y_true != background_index
    rows = []
    for threshold in thresholds:
        kept = score >= threshold
        correct = int(np.sum(real & kept & (top == y_true)))
        alarms = int(np.sum(~real & kept & (top != background_index)))
        positives, negatives = int(real.sum()), int((~real).sum())
        rows.append(
            ThresholdRow(
                threshold=float(threshold),
                recall=correct / positives if positives else float("nan"),
                false_alarm=alarms / negatives if negatives else float("nan"),
                correct=correct,
                positives=positives,
                false_alarms=alarms,
                negatives=negatives,
            )
        )
    return tuple(rows)


def recommend(rows: tuple[ThresholdRow, ...], max_false_alarm: float, max_recall_loss: float = 1.0) -> tuple[float, str]:
    """The lowest threshold of at least :data:`MIN_RECOMMENDED` whose false-alarm rate is at most ``max_false_alarm``.

    Recall only falls as the threshold rises, so the lowest such threshold keeps
    the most recall. A threshold may give up at most ``max_recall_loss`` (0–1) of the
    real classes' recall against the lowest allowed one: when the target needs more,
    or no threshold reaches it, the affordable threshold with the fewest false alarms
    (the lowest of equals) is taken. Returns ``(threshold, rule)``.
    """
    eligible = [r for r in rows if r.threshold >= MIN_RECOMMENDED] or list(rows)
    if all(r.negatives == 0 for r in rows):
        chosen = min(eligible, key=lambda r: r.threshold)
        return chosen.threshold, "the validation split has no background photos to measure false alarms on: the lowest allowed threshold"
    lowest = min(eligible, key=lambda r: r.threshold)
    affordable = [r for r in eligible if lowest.recall - r.recall <= max_recall_loss + 1e-9]
    meeting = [r for r in eligible if r.false_alarm <= max_false_alarm]
    if meeting and min(meeting, key=lambda r: r.threshold) not in affordable:
        target = min(meeting, key=lambda r: r.threshold)
        chosen = min(affordable, key=lambda r: (r.false_alarm, r.threshold))
        rule = (
            f"the false-alarm target of {max_false_alarm:.1%} (--max-false-alarm) is met only at {target.threshold:g}, "
            f"which gives up {lowest.recall - target.recall:.1%} of recall: the threshold with the fewest false alarms "
            f"among those giving up at most {max_recall_loss:.1%} of recall (against {lowest.threshold:g})"
        )
    elif meeting:
        chosen = min(meeting, key=lambda r: r.threshold)
        rule = (
            f"the lowest threshold of at least {MIN_RECOMMENDED:g} whose false-alarm rate on the validation background "
            f"photos is at most {max_false_alarm:.1%} (--max-false-alarm); recall only falls above it, and below "
            f"{MIN_RECOMMENDED:g} a label is less likely than all the others together"
        )
    else:
        chosen = min(affordable, key=lambda r: (r.false_alarm, r.threshold))
        rule = (
            f"no threshold reached the false-alarm target of {max_false_alarm:.1%} (--max-false-alarm) on the "
            "validation background photos: the one with the fewest false alarms"
            + (f" among those giving up at most {max_recall_loss:.1%} of recall" if max_recall_loss < 1 else "")
        )
    return chosen.threshold, rule


def threshold_table(
    probabilities: np.ndarray, y_true: np.ndarray, labels: tuple[str, ...], background_label: str, max_false_alarm: float,
    max_recall_loss: float = 1.0,
) -> ThresholdTable:
    """Every row of :data:`THRESHOLDS` and the recommended threshold (see :func:`recommend`)."""
    rows = threshold_rows(probabilities, y_true, labels.index(background_label))
    recommended, rule = recommend(rows, max_false_alarm, max_recall_loss)
    return ThresholdTable(background_label, rows, recommended, max_false_alarm, rule)
