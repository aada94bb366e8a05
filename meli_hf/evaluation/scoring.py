"""Scoring predictions against true category names: `Evaluation`, behind `scripts/predict.py --evaluate` and the
evaluation report."""

from __future__ import annotations

import numpy as np

from ..data.loading import normalize_category
from ..errors import MeliError
from .metrics import ClassificationMetrics


class CategoryIds:
    """Class ids of category names: the model's categories first, then each category it does not know, in the order
    met, as a class of its own that no prediction takes, so that its rows count as errors of their true class and
    its recall (zero) enters the balanced accuracy like any other."""

    def __init__(self, labels: list[str]):
        self.label_ids = {label: i for i, label in enumerate(labels)}
        self.unknown: dict[str, int] = {}  # category the model does not know -> its class id past the known ones

    def __call__(self, category: str) -> int:
        known = self.label_ids.get(category)
        return (
            known if known is not None else self.unknown.setdefault(category, len(self.label_ids) + len(self.unknown))
        )


class Evaluation:
    """Balanced accuracy, accuracy and macro-F1 of predictions against true category names, including categories
    the model does not know (`CategoryIds`). It also keeps what an evaluation report needs: each prediction's
    confidence, and a few titles of each confused pair."""

    EXAMPLES_PER_PAIR = 3

    def __init__(self, labels: list[str]):
        self.category_ids = CategoryIds(labels)
        self.references: list[int] = []
        self.predictions: list[int] = []
        self.confidences: list[float] = []
        self.examples: dict[tuple[int, int], list[str]] = {}  # (true, predicted) -> a few titles

    def add(self, category: str, predicted: str, confidence: float, title: str) -> None:
        reference = self.category_ids(normalize_category(category))
        prediction = self.label_ids[predicted]
        self.references.append(reference)
        self.predictions.append(prediction)
        self.confidences.append(confidence)
        if reference != prediction:
            examples = self.examples.setdefault((reference, prediction), [])
            if len(examples) < self.EXAMPLES_PER_PAIR:
                examples.append(title)

    @property
    def label_ids(self) -> dict[str, int]:
        """The model's categories -> their class ids."""
        return self.category_ids.label_ids

    @property
    def unknown(self) -> dict[str, int]:
        """The categories the model does not know -> their class ids, past the known ones."""
        return self.category_ids.unknown

    @property
    def class_names(self) -> list[str]:
        """Names of the class ids: the model's categories, then the unknown ones."""
        return list(self.label_ids) + list(self.unknown)

    @property
    def unknown_rows(self) -> int:
        return int(np.sum(np.asarray(self.references) >= len(self.label_ids)))

    def scores(self) -> dict[str, float]:
        if not self.references:
            raise MeliError("nothing to evaluate (no titles)")
        return ClassificationMetrics().scores(np.asarray(self.predictions), np.asarray(self.references))
