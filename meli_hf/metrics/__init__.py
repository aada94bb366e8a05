"""Metrics of every evaluation: balanced accuracy (the local `evaluate` module), accuracy and macro-F1."""

from pathlib import Path

import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from transformers import EvalPrediction

BALANCED_ACCURACY_PATH = str(Path(__file__).parent / "balanced_accuracy")


def load_balanced_accuracy() -> evaluate.Metric:
    """The balanced-accuracy metric, loaded from the package folder (no Hub)."""
    return evaluate.load(BALANCED_ACCURACY_PATH)


def classification_metrics(predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    """Balanced accuracy, accuracy and macro-F1 of predicted label ids."""
    scores = load_balanced_accuracy().compute(predictions=predictions, references=references)
    scores["accuracy"] = float(accuracy_score(references, predictions))
    scores["macro_f1"] = float(f1_score(references, predictions, average="macro", zero_division=0))
    return scores


def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
    """`Trainer` hook; predictions are already label ids (see `logits_to_label_ids`)."""
    return classification_metrics(np.asarray(eval_prediction.predictions), np.asarray(eval_prediction.label_ids))


def logits_to_label_ids(logits, labels):
    """Reduce each batch's logits to label ids before they are gathered, so no 632-way logits pile up."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)
