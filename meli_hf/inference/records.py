"""The titles `scripts/predict.py` reads and the predictions it writes, streamed record by record, so that a long
file never has to fit in memory: text (a title a line), CSV or JSONL in; JSON lines or CSV out."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator

from ..errors import MeliDataError
from ..files import decode_lines, read_csv, read_lines, record_format, unicode_problem

INPUT_FORMATS = ("text", "csv", "jsonl")
# What the output says of a title beside its predictions: `error` (no prediction), `warning` (a doubtful one).
NOTE_FIELDS = ("error", "warning")


def read_records(source: str, input_format: str | None, title_column: str) -> Iterator[tuple[int, dict]]:
    """(line number, record) of a text, CSV or JSONL file, or of standard input (`-`), read lazily."""
    name = "<stdin>" if source == "-" else source
    fmt = input_format or record_format(source) or "text"
    lines = decode_lines(sys.stdin.buffer, name) if source == "-" else read_lines(source)
    if fmt == "text":
        for number, line in lines:
            yield number, {title_column: line.rstrip("\r\n")}
    elif fmt == "jsonl":
        yield from _jsonl_records(lines, name, title_column)
    else:
        yield from _csv_title_records(lines, name, title_column)


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
        if not isinstance(record[title_column], str):
            kind = "null" if record[title_column] is None else type(record[title_column]).__name__
            raise MeliDataError(name, number, title_column, f"expected a string, got {kind}")
        for field, value in record.items():
            if isinstance(value, str) and (problem := unicode_problem(value)):
                raise MeliDataError(name, number, field, problem)
        yield number, record


def _csv_title_records(lines, name: str, title_column: str) -> Iterator[tuple[int, dict]]:
    header, rows = read_csv(lines, name)
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
    """JSON lines (`predictions` as a list) or CSV (`label_1`, `score_1`, ... columns), chosen by file name. The input
    record is carried through: a field named like an output field, or (CSV) a field that the first record lacks, is
    refused with its line, never overwritten or dropped."""

    def __init__(self, stream: io.TextIOBase, as_csv: bool, top_k: int, source: str):
        self.stream, self.as_csv, self.top_k, self.source = stream, as_csv, top_k, source
        self.csv_writer: csv.DictWriter | None = None
        if as_csv:
            scores = [name for k in range(1, top_k + 1) for name in (f"label_{k}", f"score_{k}")]
            self.output_fields = [*scores, *NOTE_FIELDS]
        else:
            self.output_fields = ["predictions", *NOTE_FIELDS]

    def write(self, number: int, record: dict, predictions: list[dict], notes: dict[str, str]) -> None:
        """`notes`: what is to be said of this title (`error`, `warning`), empty for most."""
        clash = next((field for field in record if field in self.output_fields), None)
        if clash is not None:
            raise MeliDataError(
                self.source, number, clash, "an input field named like an output field; rename it (or --title_column)"
            )
        if not self.as_csv:
            self.stream.write(json.dumps(record | {"predictions": predictions} | notes, ensure_ascii=False) + "\n")
            return
        row = dict(record)
        for k in range(self.top_k):
            prediction = predictions[k] if k < len(predictions) else {"label": "", "score": ""}
            row[f"label_{k + 1}"], row[f"score_{k + 1}"] = prediction["label"], prediction["score"]
        row |= {field: notes.get(field, "") for field in NOTE_FIELDS}
        if self.csv_writer is None:
            self.csv_writer = csv.DictWriter(self.stream, fieldnames=list(row), restval="")
            self.csv_writer.writeheader()
        extra = next((field for field in row if field not in self.csv_writer.fieldnames), None)
        if extra is not None:
            raise MeliDataError(
                self.source,
                number,
                extra,
                "a field the first record lacks: CSV output has the first record's columns (write .jsonl instead)",
            )
        self.csv_writer.writerow(row)
