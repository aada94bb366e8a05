"""Putting trained checkpoints to work: `Predictor` (Auto classes only, any of the architectures, one checkpoint or
an ensemble). Nothing here imports `datasets`, `evaluate` or matplotlib: predicting needs none of them."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ..data.collator import WordIdCollator
from ..data.tokenization import MODEL_MAX_LENGTH
from ..errors import MeliError
from ..files import is_checkpoint_folder
from ..hub import held_transformers_logs, is_load_report, load_pretrained, pass_on
from .ranking import RankingPredictor, check_same_categories, checked_checkpoints, label_columns

# The model types of meli-hf's word-level baselines (meli-mlp, meli-cnn, meli-lstm, meli-tfidf).
MELI_MODEL_TYPE_PREFIX = "meli-"
# Tokenizers saved without a length report this huge placeholder (transformers' VERY_LARGE_INTEGER).
UNSET_MODEL_MAX_LENGTH = int(1e20)


class Predictor(RankingPredictor):
    """Top-k categories with probabilities for product titles, from a checkpoint folder or Hub id, or from several
    averaged: an ensemble of checkpoints trained on the same categories (say an MLP, a CNN and an LSTM), whose
    errors differ enough that the mean of their probabilities classifies better than any one of them."""

    def __init__(
        self,
        model_name_or_path: str | Path | Sequence[str | Path],
        device: str | None = None,
        batch_size: int = 256,
        max_length: int | None = None,
        trust_remote_code: bool = False,
        flag: str = "--model",
    ):
        """`max_length`: tokens kept per title; by default each checkpoint's training length (its tokenizer's
        `model_max_length`), so serving sees the inputs training saw. `flag`: the command-line flag that named the
        checkpoints, which a checkpoint that cannot be loaded is reported under."""
        paths = checked_checkpoints(model_name_or_path, batch_size, max_length)
        try:
            self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
            torch.empty(0, device=self.device)
        except (RuntimeError, AssertionError) as err:
            raise MeliError(f"device {device!r} is not available here ({str(err).splitlines()[0]})") from None
        self.batch_size = batch_size
        self.members = [_Member.load(path, self.device, max_length, trust_remote_code, flag) for path in paths]
        self.labels = self.members[0].labels  # category names by output column
        self.names = [member.name for member in self.members]
        for member in self.members[1:]:
            member.align_to(self.labels, reference=paths[0])

    def probabilities(self, titles: list[str]) -> torch.Tensor:
        """Each title's probability of every category (columns in `labels` order), the mean over the checkpoints,
        on the predictor's device; one forward pass per checkpoint, so give at most a batch of titles."""
        return self._read(titles)[0]

    def read(self, titles: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        probabilities, known = self._read(titles)
        return probabilities.cpu().numpy(), None if known is None else known.cpu().numpy()

    @torch.inference_mode()
    def _read(self, titles: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        read = [member.read(titles) for member in self.members]
        probabilities = sum(member_probabilities for member_probabilities, _ in read) / len(read)
        known = [member_known for _, member_known in read]
        return probabilities, None if any(k is None for k in known) else torch.stack(known).any(dim=0)


GENERIC_LABEL = re.compile(r"LABEL_\d+")  # what transformers names the classes of a config that names none


def check_trained_head(name: str, flag: str, config, loading_info: dict) -> None:
    """Refuse a checkpoint that would predict noise: weights the checkpoint lacks, which loading initialised at
    random (an encoder without a trained classification head), or classes that were never named
    (`LABEL_0`, `LABEL_1`, ...: a head not trained on categories)."""
    new_weights = sorted(loading_info["missing_keys"]) + sorted(key for key, *_ in loading_info["mismatched_keys"])
    if new_weights:
        raise MeliError(
            f"{name} ({flag}) lacks trained weights for {', '.join(new_weights[:3])}"
            + (f" and {len(new_weights) - 3} more" if len(new_weights) > 3 else "")
            + ": loading would initialise them at random (a pretrained encoder without a trained classification "
            "head?); give a checkpoint trained by scripts/train.py"
        )
    generic = [label for label in config.id2label.values() if GENERIC_LABEL.fullmatch(str(label))]
    if generic:
        raise MeliError(
            f"{name} ({flag}) names its classes {', '.join(generic[:2])}{', ...' if len(generic) > 2 else ''}, not "
            "categories: its head was not trained on named categories; give a checkpoint trained by scripts/train.py"
        )


class _Member:
    """One checkpoint of a `Predictor`: its own tokenizer and model, and where its output columns go."""

    def __init__(
        self, name: str, model, encoder, pad_token_id: int, labels: list[str], unknown_ids: torch.Tensor | None
    ):
        """`unknown_ids`: the ids that are no known word (padding, unknown) of a word-level tokenizer; None for a
        subword one."""
        self.name = name
        self.model = model
        self.encoder = encoder
        self.collator = WordIdCollator(pad_token_id=pad_token_id)
        self.labels = labels
        self.unknown_ids = unknown_ids
        self.columns: torch.Tensor | None = None  # output column of each of the ensemble's labels; None: same order

    @classmethod
    def load(
        cls,
        model_name_or_path: str | Path,
        device: torch.device,
        max_length: int | None,
        trust_remote_code: bool,
        flag: str,
    ):
        path = Path(model_name_or_path)
        if path.exists() and not is_checkpoint_folder(path):
            raise MeliError(
                f"{path}: not a checkpoint folder (no config.json); give the output_dir of a training run."
            )
        name = str(model_name_or_path)
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, name, flag, trust_remote_code=trust_remote_code)
        with held_transformers_logs(is_load_report) as reports:
            model, loading_info = load_pretrained(
                AutoModelForSequenceClassification.from_pretrained,
                name,
                flag,
                trust_remote_code=trust_remote_code,
                output_loading_info=True,
            )
        check_trained_head(name, flag, model.config, loading_info)  # a refusal says what the report would
        pass_on(reports)  # weights the checkpoint holds that the model does not use
        # Titles go to the tokenizers backend directly and are padded in numpy: the `transformers` tokenizer call
        # around the same backend more than halves the titles per second (bench/predict_speed.py).
        if getattr(tokenizer, "backend_tokenizer", None) is None:
            raise MeliError(f"{model_name_or_path}: the checkpoint's tokenizer has no `tokenizers` (fast) version")
        config = model.config
        positions = getattr(config, "max_position_embeddings", None)
        if max_length is None:
            max_length = tokenizer.model_max_length
            if max_length >= UNSET_MODEL_MAX_LENGTH:  # not saved by training: the model's own limit
                max_length = positions or MODEL_MAX_LENGTH
        if positions is not None and max_length > positions:
            raise MeliError(f"max_length {max_length}: {model_name_or_path} has {positions} positions")
        encoder = copy.deepcopy(tokenizer.backend_tokenizer)
        encoder.no_padding()
        encoder.enable_truncation(max_length)
        labels = [config.id2label[i] for i in range(config.num_labels)]
        pad_token_id = tokenizer.pad_token_id or 0
        words = config.model_type.startswith(MELI_MODEL_TYPE_PREFIX)  # meli-hf's baselines read whole words
        unknown_ids = torch.tensor([pad_token_id, tokenizer.unk_token_id]) if words else None
        return cls(str(model_name_or_path), model.to(device).eval(), encoder, pad_token_id, labels, unknown_ids)

    def align_to(self, labels: list[str], reference: str | Path) -> None:
        """Reorder this checkpoint's output columns to `labels`; an ensemble needs one set of categories."""
        check_same_categories(self.labels, self.name, labels, reference)
        if self.labels != labels:
            self.columns = torch.tensor(label_columns(self.labels, labels, self.name), device=self.model.device)

    def read(self, titles: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The titles' probabilities of the ensemble's categories, and (word-level tokenizers) whether each title
        holds a word of this checkpoint's vocabulary; None for a subword tokenizer."""
        encodings = self.encoder.encode_batch_fast(titles)
        inputs = self.collator([{"input_ids": encoding.ids} for encoding in encodings])
        logits = self.model(**{k: v.to(self.model.device) for k, v in inputs.items()}).logits.float()
        probabilities = logits.softmax(dim=-1)
        probabilities = probabilities if self.columns is None else probabilities[:, self.columns]
        if self.unknown_ids is None:
            return probabilities, None
        return probabilities, torch.isin(inputs["input_ids"], self.unknown_ids, invert=True).any(dim=1)
