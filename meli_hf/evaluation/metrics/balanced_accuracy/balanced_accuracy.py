"""Balanced accuracy as a local `evaluate` metric: the challenge's metric, loadable with no Hub access."""

import datasets
import evaluate
from sklearn.metrics import balanced_accuracy_score

_DESCRIPTION = """
Balanced accuracy is the mean of the recall of each class, so that every category weighs the same whatever its
size. It was the metric of the MeLi Data Challenge 2019.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted label ids.
    references (`list` of `int`): true label ids.
Returns:
    balanced_accuracy (`float`): mean per-class recall over the classes present in `references`.
Examples:
    >>> metric = evaluate.load("meli_hf/metrics/balanced_accuracy")
    >>> metric.compute(predictions=[0, 0, 1], references=[0, 1, 1])
    {'balanced_accuracy': 0.75}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BalancedAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        return {"balanced_accuracy": float(balanced_accuracy_score(references, predictions))}
