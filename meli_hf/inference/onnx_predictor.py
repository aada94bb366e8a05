"""Predicting with ONNX serving copies (`scripts/compact.py`, the default format): onnxruntime, tokenizers and numpy,
nothing else. A process that predicts from copies never imports torch, transformers or datasets, so it starts in a
fraction of a second and its image needs none of them (README's slim install).

A copy is a folder: `model.onnx` (input ids and mask in, probabilities out), `tokenizer.json` (the checkpoint's
word tokenizer) and `serving_config.json` (the categories, the title length and the settings the graph was built
with), plus the model card of the checkpoint it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from ..data.padding import pad_ids
from ..errors import MeliError
from ..files import read_json_or_yaml
from .ranking import RankingPredictor, check_same_categories, checked_checkpoints, label_columns

ONNX_MODEL_FILE = "model.onnx"
SERVING_CONFIG_FILE = "serving_config.json"
TOKENIZER_FILE = "tokenizer.json"
COPY_FORMAT = "meli-hf-onnx"
COPY_FORMAT_VERSION = 1


def is_onnx_copy(path: str | Path) -> bool:
    """A folder written by `scripts/compact.py --format onnx`."""
    return (Path(path) / SERVING_CONFIG_FILE).is_file() and (Path(path) / ONNX_MODEL_FILE).is_file()


class OnnxPredictor(RankingPredictor):
    """`Predictor`'s answers from ONNX copies: one copy, or several averaged (an ensemble of copies of checkpoints
    trained on the same categories, or an ensemble file whose members are copies)."""

    def __init__(
        self,
        model_paths: str | Path | Sequence[str | Path],
        batch_size: int = 256,
        max_length: int | None = None,
        threads: int | None = None,
        flag: str = "--model",
    ):
        """`max_length`: words kept per title; by default the length the checkpoint was trained with. `threads`:
        onnxruntime's threads for a forward pass (default: one per core)."""
        paths = checked_checkpoints(model_paths, batch_size, max_length)
        self.batch_size = batch_size
        self.members = [_OnnxCopy.load(Path(path), max_length, threads, flag) for path in paths]
        self.labels = self.members[0].labels
        self.names = [str(path) for path in paths]
        for member in self.members[1:]:
            member.align_to(self.labels, reference=paths[0])

    def read(self, titles: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        read = [member.read(titles) for member in self.members]
        probabilities = read[0][0] if len(read) == 1 else sum(p for p, _ in read) / len(read)
        return probabilities, np.logical_or.reduce([known for _, known in read])


class _OnnxCopy:
    """One copy of an `OnnxPredictor`: its tokenizer, its onnxruntime session and where its output columns go."""

    def __init__(self, name: str, session, encoder, pad_token_id: int, unk_token_id: int, labels: list[str]):
        self.name = name
        self.session = session
        self.encoder = encoder
        self.pad_token_id = pad_token_id
        self.unk_token_id = unk_token_id
        self.labels = labels
        self.columns: np.ndarray | None = None  # output column of each of the ensemble's labels; None: same order

    @classmethod
    def load(cls, folder: Path, max_length: int | None, threads: int | None, flag: str) -> _OnnxCopy:
        import onnxruntime
        from tokenizers import Tokenizer

        if not is_onnx_copy(folder):
            raise MeliError(f"{folder} ({flag}): not an ONNX copy ({SERVING_CONFIG_FILE} and {ONNX_MODEL_FILE})")
        config = read_serving_config(folder / SERVING_CONFIG_FILE)
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only: its warnings name graph internals a user cannot act on
        try:
            session = onnxruntime.InferenceSession(
                str(folder / ONNX_MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
            encoder = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        except Exception as err:  # noqa: BLE001 - onnxruntime and tokenizers raise their own kinds
            raise MeliError(f"{folder} ({flag}): cannot be loaded ({str(err).splitlines()[0]})") from None
        encoder.no_padding()
        encoder.enable_truncation(max_length or config["max_length"])
        return cls(str(folder), session, encoder, config["pad_token_id"], config["unk_token_id"], config["labels"])

    def align_to(self, labels: list[str], reference: str | Path) -> None:
        """Reorder this copy's output columns to `labels`; an ensemble needs one set of categories."""
        check_same_categories(self.labels, self.name, labels, reference)
        if self.labels != labels:
            self.columns = np.array(label_columns(self.labels, labels, self.name))

    def read(self, titles: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The titles' probabilities of the ensemble's categories, and whether each holds a word of this copy's
        vocabulary."""
        ids = [encoding.ids for encoding in self.encoder.encode_batch_fast(titles)]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        values = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        input_ids, attention_mask = pad_ids(lengths, values, self.pad_token_id)
        (probabilities,) = self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        if self.columns is not None:
            probabilities = probabilities[:, self.columns]
        known = (input_ids != self.pad_token_id) & (input_ids != self.unk_token_id)
        return probabilities, known.any(axis=1)


def read_serving_config(path: Path) -> dict:
    """A copy's `serving_config.json`, its fields checked: one line names the file and the field at fault."""
    config = read_json_or_yaml(path, str(path))
    if not isinstance(config, dict) or config.get("format") != COPY_FORMAT:
        raise MeliError(f"{path}: not the serving config of an ONNX copy of scripts/compact.py (format)")
    if config.get("format_version") != COPY_FORMAT_VERSION:
        raise MeliError(
            f"{path}: format_version {config.get('format_version')!r}; this meli-hf reads version "
            f"{COPY_FORMAT_VERSION}: write the copy again with this version's scripts/compact.py"
        )
    labels = config.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise MeliError(f"{path}: labels: expected a list of category names")
    for field in ("max_length", "pad_token_id", "unk_token_id"):
        value = config.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < (1 if field == "max_length" else 0):
            raise MeliError(f"{path}: {field}: expected a whole number, got {value!r}")
    return config
