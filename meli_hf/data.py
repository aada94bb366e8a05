"""MeLi 2019 sources -> `datasets.DatasetDict` with `title`, `label` (ClassLabel of category names) and, for the
course's preprocessed files, `input_ids`.

Each source file is parsed once by a Python generator that validates every record (so bad input is reported
with its file, line and field) and is cached by `datasets` as Arrow; later calls, in any process, memory-map
the cache. The cache key includes each file's size and modification time, so an edited file is parsed anew.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from datasets.exceptions import DatasetGenerationError

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
COURSE_FIELDS = {"language": str, "label_quality": str, "title": str, "category": str, "data": list, "target": int}
COURSE_FEATURES = Features(
    {
        "title": Value("string"),
        "category": Value("string"),
        "target": Value("int32"),
        "input_ids": List(Value("int32")),
        "language": Value("string"),
        "label_quality": Value("string"),
    }
)
CSV_FEATURES = Features(
    {
        "title": Value("string"),
        "category": Value("string"),
        "language": Value("string"),
        "label_quality": Value("string"),
    }
)


class MeliDataError(ValueError):
    """A source file that cannot be used as it is; the message names the file, the line and the field."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, problem: str):
        where = str(path) + (f", line {line}" if line is not None else "") + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class SourceFile:
    """One split's file and its format (`course` JSONL or challenge `csv`)."""

    path: Path
    format: str


def _open_binary(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    return open(path, "rb")


def decode_lines(raw_lines: Iterable[bytes], name: str | Path) -> Iterator[tuple[int, str]]:
    """UTF-8 lines with their 1-based numbers; an undecodable line is reported with its number."""
    for number, raw in enumerate(raw_lines, start=1):
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise MeliDataError(name, number, None, f"not valid UTF-8 ({err.reason} at byte {err.start})") from None


def decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Lines of a (compressed) text file with their 1-based numbers; bad UTF-8 or bad compression is reported."""
    try:
        with _open_binary(path) as fh:
            yield from decode_lines(fh, path)
    except (OSError, EOFError) as err:
        if isinstance(err, FileNotFoundError):
            raise MeliDataError(path, None, None, "file not found") from None
        raise MeliDataError(path, None, None, f"cannot be read ({err})") from None


def _check_title(path: Path, number: int, title) -> str:
    if not isinstance(title, str):
        raise MeliDataError(path, number, "title", f"expected a string, got {type(title).__name__}")
    title = title.strip()
    if not title:
        raise MeliDataError(path, number, "title", "empty title")
    return title


def _non_empty(records: Iterator[dict], path: Path) -> Iterator[dict]:
    """Pass records through; a file without any is an error (datasets cannot cache an empty split)."""
    empty = True
    for record in records:
        empty = False
        yield record
    if empty:
        raise MeliDataError(path, None, None, "empty split (no records)")


def _course_records(path: str, signature: tuple) -> Iterator[dict]:
    """Validated records of a course `.jsonl[.gz]` file (`signature` only keys the cache)."""
    return _non_empty(_parse_course(Path(path)), Path(path))


def _csv_records(path: str, signature: tuple) -> Iterator[dict]:
    """Validated records of a challenge `.csv[.gz]` file: `title`, `category`, optional `language`, `label_quality`."""
    return _non_empty(_parse_csv(Path(path)), Path(path))


def _parse_course(path: Path) -> Iterator[dict]:
    for number, line in decoded_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise MeliDataError(path, number, None, f"malformed JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(record, dict):
            raise MeliDataError(path, number, None, "expected a JSON object")
        for field, kind in COURSE_FIELDS.items():
            if field not in record:
                raise MeliDataError(path, number, field, "missing field")
            value = record[field]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise MeliDataError(path, number, field, f"expected {kind.__name__}, got {type(value).__name__}")
        if not all(isinstance(i, int) and i >= 0 for i in record["data"]):
            raise MeliDataError(path, number, "data", "expected a list of non-negative word ids")
        if not record["category"]:
            raise MeliDataError(path, number, "category", "empty category")
        yield {
            "title": _check_title(path, number, record["title"]),
            "category": record["category"],
            "target": record["target"],
            "input_ids": record["data"],
            "language": record["language"],
            "label_quality": record["label_quality"],
        }


def csv_records(lines: Iterable[tuple[int, str]], name: str | Path) -> tuple[list[str], Iterator[tuple[int, dict]]]:
    """The header and a lazy iterator of (line number, row) of numbered CSV lines; a row of the wrong width fails."""
    numbers = []

    def text():
        for number, line in lines:
            numbers.append(number)
            yield line

    reader = csv.DictReader(text())
    if reader.fieldnames is None:
        raise MeliDataError(name, None, None, "empty file (no header line)")
    header = reader.fieldnames = [column.strip() for column in reader.fieldnames]

    def rows():
        for row in reader:
            if None in row or None in row.values():
                raise MeliDataError(name, numbers[-1], None, f"expected {len(header)} columns, got {len(row)}")
            yield numbers[-1], row

    return header, rows()


def _parse_csv(path: Path) -> Iterator[dict]:
    header, rows = csv_records(decoded_lines(path), path)
    for required in ("title", "category"):
        if required not in header:
            raise MeliDataError(path, 1, required, f"missing column (header has {', '.join(header)})")
    for number, row in rows:
        category = row["category"].strip()
        if not category:
            raise MeliDataError(path, number, "category", "empty category")
        yield {
            "title": _check_title(path, number, row["title"]),
            "category": category,
            "language": row.get("language", "").strip(),
            "label_quality": row.get("label_quality", "").strip(),
        }


def find_source_files(
    source: str | Path | Mapping[str, str | Path], language: str = "spanish"
) -> dict[str, SourceFile]:
    """Split -> file, from a mapping or a folder of course `{language}.{split}.jsonl.gz` or `{split}.csv.gz` files."""
    if isinstance(source, Mapping):
        files = {split: Path(path) for split, path in source.items()}
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise MeliDataError(folder, None, None, "not a folder (give a folder or a mapping split -> file)")
        files = {}
        for split in SPLITS:
            candidates = [folder / f"{language}.{split}.jsonl{ext}" for ext in (".gz", "")]
            candidates += [folder / f"{split}.csv{ext}" for ext in (".gz", "")]
            found = next((c for c in candidates if c.exists()), None)
            if found is not None:
                files[split] = found
        if "train" not in files:
            raise MeliDataError(folder, None, None, f"no train file ({language}.train.jsonl.gz or train.csv.gz)")
    sources = {}
    for split, path in files.items():
        if not path.exists():
            raise MeliDataError(path, None, None, "file not found")
        name = path.name.removesuffix(".gz").removesuffix(".bz2")
        if name.endswith((".jsonl", ".json")):
            sources[split] = SourceFile(path, "course")
        elif name.endswith(".csv"):
            sources[split] = SourceFile(path, "csv")
        else:
            raise MeliDataError(path, None, None, "unknown format (expected .jsonl[.gz] or .csv[.gz])")
    if len({s.format for s in sources.values()}) > 1:
        raise MeliDataError(next(iter(sources.values())).path, None, None, "splits mix course JSONL and CSV files")
    return sources


def read_token_to_index(path: str | Path) -> dict[str, int]:
    """The course's flat `{token: id}` vocabulary file."""
    path = Path(path)
    try:
        with _open_binary(path) as fh:
            vocabulary = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        raise MeliDataError(path, None, None, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise MeliDataError(path, None, None, f"not a JSON vocabulary ({err})") from None
    if not isinstance(vocabulary, dict) or not all(isinstance(i, int) for i in vocabulary.values()):
        raise MeliDataError(path, 1, None, "expected a flat JSON object {token: id}")
    return vocabulary


def _parse(source: SourceFile, cache_dir: str | None) -> Dataset:
    stat = source.path.stat()
    generator, features = (
        (_course_records, COURSE_FEATURES) if source.format == "course" else (_csv_records, CSV_FEATURES)
    )
    try:
        dataset = Dataset.from_generator(
            generator,
            features=features,
            cache_dir=cache_dir,
            gen_kwargs={"path": str(source.path.resolve()), "signature": (stat.st_size, stat.st_mtime_ns)},
        )
    except DatasetGenerationError as err:
        cause = err.__cause__
        raise (cause if isinstance(cause, MeliDataError) else err) from None
    return dataset


def _course_label_names(raw: dict[str, Dataset], sources: dict[str, SourceFile]) -> list[str]:
    """Category names ordered by the course's `target`, checked to be one category per target."""
    names: dict[int, str] = {}
    for split, dataset in raw.items():
        pairs = dataset.data.table.select(["target", "category"]).group_by(["target", "category"]).aggregate([])
        for target, category in zip(pairs["target"].to_pylist(), pairs["category"].to_pylist()):
            if names.setdefault(target, category) != category:
                raise MeliDataError(
                    sources[split].path,
                    None,
                    "target",
                    f"target {target} is used for both {names[target]!r} and {category!r}",
                )
    if sorted(names) != list(range(len(names))):
        missing = sorted(set(range(max(names) + 1)) - set(names))
        raise MeliDataError(sources["train"].path, None, "target", f"no rows for targets {missing[:10]}")
    return [names[i] for i in range(len(names))]


def load_meli(
    source: str | Path | Mapping[str, str | Path],
    language: str | None = None,
    label_quality: str | None = None,
    max_rows: Mapping[str, int] | None = None,
    seed: int = 42,
    drop_unknown_categories: bool = False,
    cache_dir: str | None = None,
) -> DatasetDict:
    """Load the MeLi 2019 splits as a memory-mapped `DatasetDict`.

    Args:
        source: a folder of course JSONL or challenge CSV files, or a mapping split -> file.
        language / label_quality: keep only rows with this value (e.g. `spanish`, `reliable`).
        max_rows: split -> maximum rows, a random subset fixed by `seed` (the course's `--train-max-size`).
        drop_unknown_categories: drop validation/test rows whose category train lacks, instead of failing.
        cache_dir: where `datasets` keeps the Arrow cache (default: its own cache folder).
    """
    sources = find_source_files(source, language or "spanish")
    raw = {split: _parse(file, cache_dir) for split, file in sources.items()}
    course = next(iter(sources.values())).format == "course"

    train_categories = set(raw["train"].unique("category"))
    for split in [s for s in raw if s != "train"]:
        unknown = sorted(set(raw[split].unique("category")) - train_categories)
        if not unknown:
            continue
        if not drop_unknown_categories:
            raise MeliDataError(
                sources[split].path,
                None,
                "category",
                f"{len(unknown)} categories absent from train: {', '.join(unknown[:20])}"
                " (pass drop_unknown_categories=True / --drop_unknown_categories to drop those rows)",
            )
        before = len(raw[split])
        mask = pc.is_in(
            raw[split].data.table["category"], value_set=pa.array(sorted(train_categories), type=pa.string())
        )
        raw[split] = raw[split].select(np.flatnonzero(mask.to_numpy(zero_copy_only=False)))
        logger.warning(
            "%s: dropped %d rows of %d categories absent from train", split, before - len(raw[split]), len(unknown)
        )

    if course:
        names = _course_label_names(raw, sources)
        label = ClassLabel(names=names)
        raw = {s: d.rename_column("target", "label").cast_column("label", label) for s, d in raw.items()}
    else:
        label = ClassLabel(names=sorted(train_categories))
        raw = {s: d.rename_column("category", "label").cast_column("label", label) for s, d in raw.items()}

    dataset = DatasetDict()
    for split, data in raw.items():
        for column, wanted in (("language", language), ("label_quality", label_quality)):
            if wanted is not None:
                data = data.filter(
                    lambda values, wanted=wanted: [v == wanted for v in values],
                    input_columns=column,
                    batched=True,
                    batch_size=10_000,
                )
        if len(data) == 0:
            raise MeliDataError(
                sources[split].path,
                None,
                None,
                f"empty split after filtering (language={language!r}, label_quality={label_quality!r})",
            )
        limit = (max_rows or {}).get(split)
        if limit is not None and limit < len(data):
            # A sorted random subset keeps reads from the memory-mapped file sequential.
            rows = np.sort(np.random.default_rng(seed).choice(len(data), size=limit, replace=False))
            data = data.select(rows)
        keep = ["title", "label"] + (["input_ids"] if course else [])
        dataset[split] = data.select_columns(keep)
    return dataset
