"""Metrics of every evaluation: balanced accuracy (the local `evaluate` module), accuracy and macro-F1."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, f1_score

if TYPE_CHECKING:  # scoring an ONNX copy's predictions (predict.py --evaluate) imports no transformers
    from transformers import EvalPrediction

BALANCED_ACCURACY_PATH = str(Path(__file__).parent / "balanced_accuracy")
# The splits a run evaluates, and the prefix of their metrics (the Trainer's `metric_key_prefix`).
SPLIT_METRIC_PREFIXES = {"validation": "eval", "test": "test"}


class ClassificationMetrics:
    """Balanced accuracy, accuracy and macro-F1 of predicted label ids. The `evaluate` module is loaded once, when
    the object is made (once per run), not at every evaluation; called with an `EvalPrediction` it is the Trainer's
    `compute_metrics` hook, whose predictions are already label ids (see `logits_to_label_ids`)."""

    def __init__(self):
        self.balanced_accuracy = evaluate.load(BALANCED_ACCURACY_PATH)

    def scores(self, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
        scores = self.balanced_accuracy.compute(predictions=predictions, references=references)
        scores["accuracy"] = float(accuracy_score(references, predictions))
        scores["macro_f1"] = float(f1_score(references, predictions, average="macro", zero_division=0))
        return scores

    def __call__(self, eval_prediction: EvalPrediction) -> dict[str, float]:
        return self.scores(np.asarray(eval_prediction.predictions), np.asarray(eval_prediction.label_ids))


def logits_to_label_ids(logits, labels):
    """Reduce each batch's logits to label ids before they are gathered, so no 632-way logits pile up."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)
