"""MeLi 2019 sources -> `datasets.DatasetDict` with `title`, `label` (ClassLabel of category names) and, for the
course's preprocessed files, `input_ids`.

Each source file is parsed once by a Python generator that validates every record (so bad input is reported
with its file, line and field) and is cached by `datasets` as Arrow; later calls, in any process, memory-map
the cache. The cache key includes each file's size and modification time and the parser's format version, so an
edited file, or a newer parser, parses anew.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import datasets.config
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from datasets.exceptions import DatasetGenerationError

from ..errors import MeliDataError, MeliError
from ..files import open_binary, read_csv, read_lines, record_format

logger = logging.getLogger(__name__)

# Raise it whenever what the parsers produce from the same file changes: caches written by older parsers are then
# never served.
PARSER_VERSION = 2
INT32_LIMIT = 2**31
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


@dataclass(frozen=True)
class SourceFile:
    """One split's file and its format (`course` JSONL or challenge `csv`)."""

    path: Path
    format: str


def normalize_category(category: str) -> str:
    """A category name as training stores it (surrounding spaces dropped), so names from any source compare."""
    return category.strip()


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


def _course_records(path: str, vocabulary_size: int | None, signature: tuple) -> Iterator[dict]:
    """Validated records of a course `.jsonl[.gz]` file (`signature` only keys the cache)."""
    return _non_empty(_parse_course(Path(path), vocabulary_size), Path(path))


def _challenge_csv_records(path: str, signature: tuple) -> Iterator[dict]:
    """Validated records of a challenge `.csv[.gz]` file: `title`, `category`, optional `language`, `label_quality`."""
    return _non_empty(_parse_csv(Path(path)), Path(path))


def _check_word_ids(path: Path, number: int, ids: list, vocabulary_size: int | None) -> None:
    """Word ids are vocabulary rows: padding (0) never stands inside a title, and no id lies past the vocabulary."""
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise MeliDataError(path, number, "data", "expected a list of integer word ids")
    if not ids:
        return
    low, high = min(ids), max(ids)
    if low < 1:
        problem = "the padding id 0" if low == 0 else f"a negative id ({low})"
        raise MeliDataError(path, number, "data", f"{problem} among the word ids (real words have ids from 1)")
    limit = vocabulary_size if vocabulary_size is not None else INT32_LIMIT
    if high >= limit:
        size = f"the vocabulary's {vocabulary_size} words" if vocabulary_size is not None else "32-bit integers"
        raise MeliDataError(path, number, "data", f"word id {high} lies outside {size}")


def _parse_course(path: Path, vocabulary_size: int | None) -> Iterator[dict]:
    for number, line in read_lines(path):
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
        _check_word_ids(path, number, record["data"], vocabulary_size)
        if not 0 <= record["target"] < INT32_LIMIT:
            raise MeliDataError(path, number, "target", f"expected a label id from 0, got {record['target']}")
        category = normalize_category(record["category"])
        if not category:
            raise MeliDataError(path, number, "category", "empty category")
        yield {
            "title": _check_title(path, number, record["title"]),
            "category": category,
            "target": record["target"],
            "input_ids": record["data"],
            "language": record["language"],
            "label_quality": record["label_quality"],
        }


def _parse_csv(path: Path) -> Iterator[dict]:
    header, rows = read_csv(read_lines(path), path)
    for required in ("title", "category"):
        if required not in header:
            raise MeliDataError(path, 1, required, f"missing column (header has {', '.join(header)})")
    for number, row in rows:
        category = normalize_category(row["category"])
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
            found = [candidate for candidate in candidates if candidate.exists()]
            if len(found) > 1:
                raise MeliDataError(
                    folder, None, None, f"{' and '.join(f.name for f in found)} are both the {split} split: keep one"
                )
            if found:
                files[split] = found[0]
        if "train" not in files:
            raise MeliDataError(folder, None, None, f"no train file ({language}.train.jsonl.gz or train.csv.gz)")
    sources = {}
    for split, path in files.items():
        if not path.exists():
            raise MeliDataError(path, None, None, "file not found")
        fmt = record_format(path.name)
        if fmt is None:
            raise MeliDataError(path, None, None, "unknown format (expected .jsonl[.gz] or .csv[.gz])")
        sources[split] = SourceFile(path, "course" if fmt == "jsonl" else "csv")
    if len({s.format for s in sources.values()}) > 1:
        raise MeliDataError(next(iter(sources.values())).path, None, None, "splits mix course JSONL and CSV files")
    return sources


def read_token_to_index(path: str | Path) -> dict[str, int]:
    """The course's flat `{token: id}` vocabulary file."""
    path = Path(path)
    try:
        with open_binary(path) as fh:
            vocabulary = json.loads(fh.read().decode("utf-8-sig"))
    except FileNotFoundError:
        raise MeliDataError(path, None, None, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as err:
        raise MeliDataError(path, None, None, f"not a JSON vocabulary ({err})") from None
    if not isinstance(vocabulary, dict) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in vocabulary.values()
    ):
        raise MeliDataError(path, 1, None, "expected a flat JSON object {token: non-negative id}")
    return vocabulary


def find_course_vocabulary(sources: Mapping[str, SourceFile], language: str = "spanish") -> Path | None:
    """The course's `{language}_token_to_index.json[.gz]` beside the train file, if there is one."""
    folder = sources["train"].path.parent
    return next(
        (p for p in (folder / f"{language}_token_to_index.json{ext}" for ext in (".gz", "")) if p.exists()), None
    )


def _cache_error(err: OSError, cache_dir: str | None) -> MeliError:
    folder = cache_dir or datasets.config.HF_DATASETS_CACHE
    return MeliError(
        f"cannot write the datasets cache in {folder} ({err.strerror or err}); free space there or pick another "
        "folder with HF_DATASETS_CACHE=DIR (load_meli(cache_dir=DIR) in Python)"
    )


def _parse(source: SourceFile, vocabulary_size: int | None, cache_dir: str | None) -> Dataset:
    stat = source.path.stat()
    gen_kwargs = {"path": str(source.path.resolve()), "signature": (PARSER_VERSION, stat.st_size, stat.st_mtime_ns)}
    if source.format == "course":
        generator, features = _course_records, COURSE_FEATURES
        gen_kwargs["vocabulary_size"] = vocabulary_size
    else:
        generator, features = _challenge_csv_records, CSV_FEATURES
    try:
        return Dataset.from_generator(generator, features=features, cache_dir=cache_dir, gen_kwargs=gen_kwargs)
    except DatasetGenerationError as err:
        cause = err.__cause__
        if isinstance(cause, MeliDataError):
            raise cause from None  # the parser's own report names the file, line and field
        if isinstance(cause, OSError):
            raise _cache_error(cause, cache_dir) from err
        raise MeliDataError(
            source.path, None, None, f"could not be stored as Arrow ({type(cause or err).__name__}: {cause or err})"
        ) from err
    except OSError as err:  # the cache folder itself: read-only, missing permissions
        raise _cache_error(err, cache_dir) from err


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


def _keep_rows(data: Dataset, column: str, wanted: str) -> Dataset:
    return data.filter(
        lambda values: [v == wanted for v in values], input_columns=column, batched=True, batch_size=10_000
    )


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
        language / label_quality: keep only rows with this value (e.g. `spanish`, `reliable`); the filters apply
            before the categories are collected and checked.
        max_rows: split -> maximum rows, a random subset fixed by `seed` (the course's `--train-max-size`).
        drop_unknown_categories: drop validation/test rows whose category train lacks, instead of failing.
        cache_dir: where `datasets` keeps the Arrow cache (default: its own cache folder).
    """
    for split, limit in (max_rows or {}).items():
        if limit < 1:
            raise MeliError(f"max_rows[{split!r}] is {limit}: keep at least one row (or leave the split unlimited)")
    sources = find_source_files(source, language or "spanish")
    if "train" not in sources:
        raise MeliError(f"no train split among {', '.join(sources)}: training needs a train file")
    course = sources["train"].format == "course"
    vocabulary = find_course_vocabulary(sources, language or "spanish") if course else None
    vocabulary_size = max(read_token_to_index(vocabulary).values(), default=0) + 1 if vocabulary else None
    raw = {split: _parse(file, vocabulary_size, cache_dir) for split, file in sources.items()}
    # Course label ids are the course's targets over all rows, whatever the filters keep.
    course_names = _course_label_names(raw, sources) if course else None

    for split, data in raw.items():
        for column, wanted in (("language", language), ("label_quality", label_quality)):
            if wanted is not None:
                data = _keep_rows(data, column, wanted)
        if len(data) == 0:
            raise MeliDataError(
                sources[split].path,
                None,
                None,
                f"empty split after filtering (language={language!r}, label_quality={label_quality!r})",
            )
        raw[split] = data

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
        # The split's own rows (a filtered split reads through its indices), as one Arrow column.
        categories = raw[split].select_columns(["category"]).with_format("arrow")[:]["category"]
        mask = pc.is_in(categories, value_set=pa.array(sorted(train_categories), type=pa.string()))
        raw[split] = raw[split].select(np.flatnonzero(mask.to_numpy(zero_copy_only=False)))
        logger.warning(
            "%s: dropped %d rows of %d categories absent from train", split, before - len(raw[split]), len(unknown)
        )
        if len(raw[split]) == 0:
            raise MeliDataError(
                sources[split].path, None, "category", "no row left: every category is absent from train"
            )

    if course:
        label = ClassLabel(names=course_names)
        raw = {s: d.rename_column("target", "label").cast_column("label", label) for s, d in raw.items()}
    else:
        label = ClassLabel(names=sorted(train_categories))
        raw = {s: d.rename_column("category", "label").cast_column("label", label) for s, d in raw.items()}

    dataset = DatasetDict()
    for split, data in raw.items():
        limit = (max_rows or {}).get(split)
        if limit is not None and limit < len(data):
            # A sorted random subset keeps reads from the memory-mapped file sequential.
            rows = np.sort(np.random.default_rng(seed).choice(len(data), size=limit, replace=False))
            data = data.select(rows)
        keep = ["title", "label"] + (["input_ids"] if course else [])
        dataset[split] = data.select_columns(keep)
    return dataset
