"""What every predictor does with probabilities, whatever computes them (torch checkpoints in `predictor`, ONNX
copies in `onnx_predictor`): rank each title's categories, flag titles with no known word, and check that the
members of an ensemble know the same categories. numpy only: the torch-free path imports this too."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import MeliError
from .ensemble_file import checkpoint_paths


class RankingPredictor:
    """Top-k categories with probabilities for product titles. A subclass sets `labels` (category names by output
    column), `batch_size` and `names` (its checkpoints), and reads titles into probabilities (`read`)."""

    labels: list[str]
    batch_size: int
    names: list[str]

    def read(self, titles: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Each title's probability of every category (float32, columns in `labels` order; the mean over an
        ensemble's checkpoints), and whether some checkpoint knows a word of it (None where a checkpoint reads
        subwords); one forward pass per checkpoint, so give at most a batch of titles."""
        raise NotImplementedError

    def predict(self, titles: str | Iterable[str], top_k: int = 1) -> list[list[dict[str, float | str]]]:
        """For each title, its `top_k` categories as `{"label", "score"}`; an empty title gets an empty list.
        A single string is one title and gets its own list, as `pipeline` answers."""
        if isinstance(titles, str):
            return self.predict([titles], top_k)[0]
        return self.predict_with_unknown_flags(titles, top_k)[0]

    def predict_with_unknown_flags(
        self, titles: Iterable[str], top_k: int = 1
    ) -> tuple[list[list[dict[str, float | str]]], list[bool]]:
        """`predict`'s answers, and for each title whether no checkpoint knows a word of it (stopwords, punctuation,
        emoji, words never seen in training): its prediction is then the models' prior, not a reading of the title.
        Never flagged where a checkpoint reads subwords (BETO), which cover any text, nor for an empty title. The
        flags come from the word ids the prediction reads."""
        if not isinstance(top_k, int) or top_k < 1:
            raise MeliError(f"top_k {top_k}: must be at least 1")
        titles = list(titles)
        for number, title in enumerate(titles):
            if not isinstance(title, str):
                raise TypeError(f"title {number} is a {type(title).__name__}, not a string")
        results: list[list[dict]] = [[] for _ in titles]
        unknown = [False] * len(titles)
        present = [i for i, title in enumerate(titles) if title.strip()]
        labels = self.labels
        top_k = min(top_k, len(labels))
        for start in range(0, len(present), self.batch_size):
            rows = present[start : start + self.batch_size]
            probabilities, known = self.read([titles[i] for i in rows])
            ids = top_k_columns(probabilities, top_k)
            scores = np.take_along_axis(probabilities, ids, axis=1)
            for row, row_scores, row_ids in zip(rows, scores.tolist(), ids.tolist()):
                results[row] = [{"label": labels[i], "score": s} for i, s in zip(row_ids, row_scores)]
            if known is not None:
                for row, knows in zip(rows, known.tolist()):
                    unknown[row] = not knows
        return results, unknown

    @property
    def model_names(self) -> list[str]:
        """The checkpoints by folder name or Hub id: what a response may show of them (never a local path)."""
        return [Path(name).name if Path(name).exists() else name for name in self.names]


def checked_checkpoints(
    models: str | Path | Sequence[str | Path], batch_size: int, max_length: int | None
) -> list[str]:
    """The checkpoints a predictor loads: `models` (a folder, Hub id or ensemble file, or a list of them) with
    ensemble files expanded; the settings no predictor takes are refused."""
    given = [models] if isinstance(models, (str, Path)) else list(models)
    paths = [member for path in given for member in checkpoint_paths(path)]
    if not paths:
        raise MeliError("no checkpoint given")
    if batch_size < 1:
        raise MeliError(f"batch_size {batch_size}: must be at least 1")
    if max_length is not None and max_length < 1:
        raise MeliError(f"max_length {max_length}: must be at least 1")
    return paths


def top_k_columns(probabilities: np.ndarray, k: int) -> np.ndarray:
    """The columns of each row's `k` largest values, largest first (rows x k)."""
    if k == 1:
        return probabilities.argmax(axis=1)[:, None]
    candidates = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(probabilities, candidates, axis=1), axis=1, kind="stable")
    return np.take_along_axis(candidates, order, axis=1)


def check_same_categories(labels: Sequence[str], name: str, reference_labels: Sequence[str], reference) -> None:
    """Checkpoints combined (an ensemble, a candidate of `scripts/ensemble.py`) know the same categories."""
    if set(labels) != set(reference_labels):
        missing = sorted(set(reference_labels) - set(labels))
        extra = sorted(set(labels) - set(reference_labels))
        raise MeliError(
            f"{name} was trained on other categories than {reference}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} extra (e.g. {extra[:3]})"
        )


def label_columns(model_labels: Sequence[str], label_names: Sequence[str], source: str) -> list[int]:
    """For each of `label_names`, the output column of the same name among `model_labels` (of `source`, named in
    the error when some are missing)."""
    column = {label: i for i, label in enumerate(model_labels)}
    missing = [label for label in label_names if label not in column]
    if missing:
        raise MeliError(
            f"{source}: trained without {len(missing)} of this data's categories (e.g. {', '.join(missing[:3])}); "
            "use checkpoints trained on the same categories"
        )
    return [column[label] for label in label_names]
