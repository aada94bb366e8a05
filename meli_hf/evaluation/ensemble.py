"""Ensembles as a command (`scripts/ensemble.py`): forward selection of checkpoints on the validation split, written
to an ensemble file that `scripts/predict.py --model` and `scripts/train.py --teacher` take like a checkpoint.

Forward selection (Caruana et al. 2004) starts from the best candidate alone and adds, one at a time, the candidate
whose averaged probabilities raise validation balanced accuracy most, until none does. Each candidate's probabilities
are computed once per split; every combination tried is then a mean of stored matrices.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset

from ..errors import MeliError
from ..files import atomic_output
from ..inference.predictor import Predictor
from ..inference.ranking import check_same_categories, label_columns
from .metrics import ClassificationMetrics
from .scoring import CategoryIds

ENSEMBLE_METRIC = "balanced_accuracy"


def split_probabilities(
    predictor: Predictor, candidate: str, splits: dict[str, Dataset], labels: Sequence[str]
) -> dict[str, torch.Tensor]:
    """A candidate's probabilities of `labels` (matched by name) for every title of each split."""
    columns = torch.tensor(label_columns(predictor.labels, labels, candidate))
    probabilities = {}
    for split, data in splits.items():
        titles = data["title"]
        size = predictor.batch_size
        batches = [predictor.probabilities(titles[i : i + size]).cpu() for i in range(0, len(titles), size)]
        probabilities[split] = torch.cat(batches)[:, columns]
    return probabilities


def reference_ids(split: Dataset, labels: Sequence[str]) -> np.ndarray:
    """Each row's category as a column of `labels`, a category no candidate knows as a class of its own
    (`CategoryIds`, as `Evaluation` counts it)."""
    names, category_ids = split.features["label"].names, CategoryIds(list(labels))
    return np.asarray([category_ids(names[i]) for i in split["label"]])


def ensemble_scores(
    probabilities: Sequence[torch.Tensor], references: np.ndarray, metrics: ClassificationMetrics
) -> dict[str, float]:
    predictions = (sum(probabilities) / len(probabilities)).argmax(dim=-1).numpy()
    return metrics.scores(predictions, references)


def forward_selection(
    validation: dict[str, torch.Tensor], references: np.ndarray, metrics: ClassificationMetrics
) -> list[dict]:
    """The selection's steps: the member added and the validation scores of the ensemble so far."""
    steps, chosen = [], []
    best = -1.0
    while len(chosen) < len(validation):
        trials = {
            name: ensemble_scores([validation[m] for m in chosen] + [probabilities], references, metrics)
            for name, probabilities in validation.items()
            if name not in chosen
        }
        name = max(trials, key=lambda n: trials[n][ENSEMBLE_METRIC])
        if trials[name][ENSEMBLE_METRIC] <= best:
            break
        best = trials[name][ENSEMBLE_METRIC]
        chosen.append(name)
        steps.append({"added": name, "validation": trials[name]})
    return steps


def build_ensemble(
    candidates: Sequence[str], validation: Dataset, test: Dataset | None, batch_size: int = 512
) -> dict:
    """Select an ensemble of `candidates` on `validation` and score each candidate, and the ensemble, on both splits:
    the content of an ensemble file."""
    if len(set(candidates)) != len(candidates):
        raise MeliError("--candidates: a checkpoint is named twice")
    splits = {"validation": validation} | ({"test": test} if test is not None else {})
    by_candidate, labels = {}, None
    for candidate in candidates:  # one checkpoint in memory at a time
        predictor = Predictor(candidate, batch_size=batch_size, flag="--candidates")
        labels = labels or predictor.labels
        check_same_categories(predictor.labels, f"--candidates {candidate}", labels, candidates[0])
        by_candidate[candidate] = split_probabilities(predictor, candidate, splits, labels)
    probabilities = {split: {c: by_candidate[c][split] for c in candidates} for split in splits}
    references = {split: reference_ids(data, labels) for split, data in splits.items()}
    metrics = ClassificationMetrics()  # the evaluate module, loaded once for every combination tried
    steps = forward_selection(probabilities["validation"], references["validation"], metrics)
    members = [step["added"] for step in steps]
    scores = {
        split: {
            "ensemble": ensemble_scores([probabilities[split][m] for m in members], references[split], metrics),
            "candidates": {
                c: ensemble_scores([probabilities[split][c]], references[split], metrics) for c in candidates
            },
        }
        for split in splits
    }
    return {"members": members, "selection": steps, "scores": scores}


def write_ensemble_file(ensemble: dict, path: str | Path) -> None:
    """The ensemble file, replaced only once complete; local members by absolute path, so that it works from any
    folder."""
    members = [str(Path(m).resolve()) if Path(m).exists() else m for m in ensemble["members"]]
    with atomic_output(path) as stream:
        json.dump(ensemble | {"members": members}, stream, indent=2)
        stream.write("\n")
