"""Putting trained checkpoints to work: `Predictor` (Auto classes only, any of the architectures, one
checkpoint or an ensemble) and the streaming readers and writers behind `scripts/predict.py`, so a long file never
has to fit in memory."""

from __future__ import annotations

import copy
import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from .collator import WordIdCollator
from .data import MeliDataError, csv_records, decode_lines, decoded_lines

INPUT_FORMATS = ("text", "csv", "jsonl")


class Predictor:
    """Top-k categories with probabilities for product titles, from a checkpoint folder or Hub id, or from several
    averaged: an ensemble of checkpoints trained on the same categories (say an MLP, a CNN and an LSTM), whose
    errors differ enough that the mean of their probabilities classifies better than any one of them."""

    def __init__(
        self,
        model_name_or_path: str | Path | Sequence[str | Path],
        device: str | None = None,
        batch_size: int = 256,
        max_length: int = 64,
        trust_remote_code: bool = False,
    ):
        paths = [model_name_or_path] if isinstance(model_name_or_path, (str, Path)) else list(model_name_or_path)
        if not paths:
            raise ValueError("no checkpoint given")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = batch_size
        self.members = [_Member.load(path, self.device, max_length, trust_remote_code) for path in paths]
        self.labels = self.members[0].labels  # category names by output column
        for member in self.members[1:]:
            member.align_to(self.labels, reference=paths[0])

    @torch.inference_mode()
    def predict(self, titles: Sequence[str], top_k: int = 1) -> list[list[dict[str, float | str]]]:
        """For each title, its `top_k` categories as `{"label", "score"}`; an empty title gets an empty list."""
        results: list[list[dict]] = [[] for _ in titles]
        present = [i for i, title in enumerate(titles) if title and title.strip()]
        labels = self.labels
        top_k = min(top_k, len(labels))
        for start in range(0, len(present), self.batch_size):
            rows = present[start : start + self.batch_size]
            batch = [titles[i] for i in rows]
            probabilities = sum(member.probabilities(batch) for member in self.members) / len(self.members)
            scores, ids = probabilities.topk(top_k, dim=-1)
            for row, row_scores, row_ids in zip(rows, scores.tolist(), ids.tolist()):
                results[row] = [{"label": labels[i], "score": s} for i, s in zip(row_ids, row_scores)]
        return results


class _Member:
    """One checkpoint of a `Predictor`: its own tokenizer and model, and where its output columns go."""

    def __init__(self, name: str, model, encoder, pad_token_id: int, labels: list[str]):
        self.name = name
        self.model = model
        self.encoder = encoder
        self.collator = WordIdCollator(pad_token_id=pad_token_id)
        self.labels = labels
        self.columns: torch.Tensor | None = None  # output column of each of the ensemble's labels; None: same order

    @classmethod
    def load(cls, model_name_or_path: str | Path, device: torch.device, max_length: int, trust_remote_code: bool):
        path = Path(model_name_or_path)
        if path.exists() and not (path / "config.json").is_file():
            raise ValueError(
                f"{path}: not a checkpoint folder (no config.json); give the output_dir of a training run."
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
            model = AutoModelForSequenceClassification.from_pretrained(
                model_name_or_path, trust_remote_code=trust_remote_code
            )
        except OSError as err:
            raise ValueError(
                f"cannot load {model_name_or_path!r}: not a local checkpoint nor a reachable Hub model ({err})"
            ) from None
        # Titles go to the tokenizers backend directly and are padded in numpy: the `transformers` tokenizer call
        # around the same backend more than halves the titles per second (bench/predict_speed.py).
        if getattr(tokenizer, "backend_tokenizer", None) is None:
            raise ValueError(f"{model_name_or_path}: the checkpoint's tokenizer has no `tokenizers` (fast) version")
        encoder = copy.deepcopy(tokenizer.backend_tokenizer)
        encoder.no_padding()
        encoder.enable_truncation(max_length)
        config = model.config
        labels = [config.id2label[i] for i in range(config.num_labels)]
        return cls(str(model_name_or_path), model.to(device).eval(), encoder, tokenizer.pad_token_id or 0, labels)

    def align_to(self, labels: list[str], reference: str | Path) -> None:
        """Reorder this checkpoint's output columns to `labels`; an ensemble needs one set of categories."""
        if set(self.labels) != set(labels):
            missing, extra = sorted(set(labels) - set(self.labels)), sorted(set(self.labels) - set(labels))
            raise ValueError(
                f"{self.name} was trained on other categories than {reference}: "
                f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} extra (e.g. {extra[:3]})"
            )
        if self.labels != labels:
            column = {label: i for i, label in enumerate(self.labels)}
            self.columns = torch.tensor([column[label] for label in labels], device=self.model.device)

    def probabilities(self, titles: list[str]) -> torch.Tensor:
        encodings = self.encoder.encode_batch_fast(titles)
        inputs = self.collator([{"input_ids": encoding.ids} for encoding in encodings])
        logits = self.model(**{k: v.to(self.model.device) for k, v in inputs.items()}).logits.float()
        probabilities = logits.softmax(dim=-1)
        return probabilities if self.columns is None else probabilities[:, self.columns]


def read_records(source: str, input_format: str | None, title_column: str) -> Iterator[tuple[int, dict]]:
    """(line number, record) of a text, CSV or JSONL file, or of standard input (`-`), read lazily."""
    name = "<stdin>" if source == "-" else source
    fmt = input_format or _format_from_name(source)
    if source == "-":
        lines = decode_lines(sys.stdin.buffer, name)
    else:
        path = Path(source)
        if not path.is_file():
            raise MeliDataError(path, None, None, "file not found")
        lines = decoded_lines(path)
    if fmt == "text":
        for number, line in lines:
            yield number, {title_column: line.rstrip("\r\n")}
    elif fmt == "jsonl":
        yield from _jsonl_records(lines, name, title_column)
    else:
        yield from _csv_records(lines, name, title_column)


def _format_from_name(source: str) -> str:
    name = source.removesuffix(".gz").removesuffix(".bz2")
    return "csv" if name.endswith(".csv") else "jsonl" if name.endswith((".jsonl", ".json")) else "text"


def _jsonl_records(lines, name: str, title_column: str) -> Iterator[tuple[int, dict]]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise MeliDataError(name, number, None, f"malformed JSON ({err.msg})") from None
        if not isinstance(record, dict) or title_column not in record:
            raise MeliDataError(name, number, title_column, "missing field (set --title_column)")
        yield number, record


def _csv_records(lines, name: str, title_column: str) -> Iterator[tuple[int, dict]]:
    header, rows = csv_records(lines, name)
    if title_column not in header:
        raise MeliDataError(name, 1, title_column, f"unknown column; the header has {', '.join(header)}")
    yield from rows


def batched(records: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of `size` items; on a bad record, the items read before it come out first, then the error."""
    batch = []
    try:
        for record in records:
            batch.append(record)
            if len(batch) == size:
                yield batch
                batch = []
    except MeliDataError:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


class PredictionWriter:
    """JSON lines (`predictions` as a list) or CSV (`label_1`, `score_1`, ... columns), chosen by file name."""

    def __init__(self, stream: io.TextIOBase, as_csv: bool, top_k: int):
        self.stream, self.as_csv, self.top_k = stream, as_csv, top_k
        self.csv_writer = None

    def write(self, record: dict, predictions: list[dict]) -> None:
        if not self.as_csv:
            row = record | {"predictions": predictions}
            if not predictions:
                row["error"] = "empty title"
            self.stream.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        row = dict(record)
        for k in range(self.top_k):
            prediction = predictions[k] if k < len(predictions) else {"label": "", "score": ""}
            row[f"label_{k + 1}"], row[f"score_{k + 1}"] = prediction["label"], prediction["score"]
        row["error"] = "" if predictions else "empty title"
        if self.csv_writer is None:
            self.csv_writer = csv.DictWriter(self.stream, fieldnames=list(row))
            self.csv_writer.writeheader()
        self.csv_writer.writerow(row)
