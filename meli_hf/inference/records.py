"""The titles `scripts/predict.py` reads and the predictions it writes, streamed record by record, so that a long
file never has to fit in memory: text (a title a line), CSV or JSONL in; JSON lines or CSV out."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator

from ..errors import MeliDataError
from ..files import decode_lines, read_csv, read_lines, record_format

INPUT_FORMATS = ("text", "csv", "jsonl")


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
