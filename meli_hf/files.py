"""The one place every reader and writer goes through: plain, gzip and bz2 files, numbered UTF-8 lines, CSV rows
and outputs that replace a file only once they are complete.

Readers report problems as `MeliDataError` with the file and line; writers never leave a half-written file where
a user's file was.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO

import yaml

from .errors import MeliDataError, MeliError

UTF8_BOM = "\ufeff"
LONE_CARRIAGE_RETURN = re.compile(r"\r(?!\n)")
# Titles are short, but a CSV export can hold fields of any length; the csv module's default stops at 128 KiB.
CSV_FIELD_SIZE_LIMIT = 2**31 - 1


def open_binary(path: str | Path) -> IO[bytes]:
    """A file opened for reading bytes, decompressed by its suffix (`.gz`, `.bz2`)."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    return open(path, "rb")


def decode_lines(raw_lines: Iterable[bytes], name: str | Path) -> Iterator[tuple[int, str]]:
    """UTF-8 lines with their 1-based numbers, a leading byte-order mark (Excel's UTF-8 export) dropped; an
    undecodable line is reported with its number. A lone carriage return ends a line as `\n` and `\r\n` do (the
    line ends of classic Mac OS and of some exports), so that such a file is not read as one line."""
    number = 0
    for raw in raw_lines:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise MeliDataError(
                name, number + 1, None, f"not valid UTF-8 ({err.reason} at byte {err.start})"
            ) from None
        lines = LONE_CARRIAGE_RETURN.split(text) if "\r" in text else [text]
        if len(lines) > 1 and not lines[-1]:
            lines.pop()  # the file's last line ended with a carriage return
        for line in lines:
            number += 1
            yield number, line.removeprefix(UTF8_BOM) if number == 1 else line


def unicode_problem(text: str) -> str | None:
    """Why `text` cannot be written as UTF-8 or tokenized, if it cannot: JSON's `\\ud800` escapes decode to lone
    surrogates, which are no characters."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"not valid Unicode text (a lone surrogate, {text[err.start]!r}, at character {err.start + 1})"
    return None


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a (compressed) text file; a missing, unreadable or badly compressed file is reported."""
    path = Path(path)
    try:
        with open_binary(path) as fh:
            yield from decode_lines(fh, path)
    except (OSError, EOFError) as err:
        if isinstance(err, FileNotFoundError):
            raise MeliDataError(path, None, None, "file not found") from None
        if isinstance(err, IsADirectoryError):
            raise MeliDataError(path, None, None, "is a folder, not a file") from None
        raise MeliDataError(path, None, None, f"cannot be read ({err})") from None


def _rows_without_field_limit(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    """The rows of a csv reader, each read under a field-size limit raised for that read alone, so no other code
    of the process sees the csv module's setting changed."""
    while True:
        previous = csv.field_size_limit(CSV_FIELD_SIZE_LIMIT)
        try:
            row = next(reader)
        except StopIteration:
            return
        finally:
            csv.field_size_limit(previous)
        yield row


def read_csv(lines: Iterable[tuple[int, str]], name: str | Path) -> tuple[list[str], Iterator[tuple[int, dict]]]:
    """The header and a lazy iterator of (line number, row as a dict) of numbered CSV lines; a row with more or
    fewer fields than the header is reported with its line."""
    numbers = []

    def text():
        for number, line in lines:
            numbers.append(number)
            yield line

    reader = _rows_without_field_limit(csv.reader(text()))
    try:
        header = [column.strip() for column in next(reader)]
    except StopIteration:
        raise MeliDataError(name, None, None, "empty file (no header line)") from None
    except csv.Error as err:
        raise MeliDataError(name, numbers[-1] if numbers else 1, None, f"malformed CSV ({err})") from None
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise MeliDataError(name, numbers[-1], repeated[0], "the header names this column twice: which one is meant?")

    def rows():
        try:
            for fields in reader:
                if not fields:  # a blank line
                    continue
                if fields[0].strip() == header[0] and [field.strip() for field in fields] == header:
                    raise MeliDataError(
                        name, numbers[-1], None, "the header line again (files joined with their headers?)"
                    )
                if len(fields) != len(header):
                    raise MeliDataError(
                        name, numbers[-1], None, f"expected {len(header)} fields (the header's), got {len(fields)}"
                    )
                yield numbers[-1], dict(zip(header, fields))
        except csv.Error as err:
            raise MeliDataError(name, numbers[-1], None, f"malformed CSV ({err})") from None

    return header, rows()


def is_same_file(first: str | Path, second: str | Path) -> bool:
    """Whether two paths name the same existing file (links and relative paths resolved)."""
    with contextlib.suppress(OSError):
        return os.path.samefile(first, second)
    return False


# The files a checkpoint folder is loaded from (config, weights, tokenizer, code it ships, ensemble files): an output
# may not replace them. Other files in a model's folder (predictions, reports) are nobody's input.
CHECKPOINT_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".py", ".model", ".onnx", ".pt")


def record_format(name: str | Path) -> str | None:
    """`csv` or `jsonl` by a file's name (`.gz` and `.bz2` read through); None for any other name."""
    name = str(name).removesuffix(".gz").removesuffix(".bz2")
    return "csv" if name.endswith(".csv") else "jsonl" if name.endswith((".jsonl", ".json")) else None


def is_checkpoint_folder(path: str | Path) -> bool:
    """A folder that `from_pretrained` loads: one holding a `config.json`."""
    return (Path(path) / "config.json").is_file()


def _files_read_from(source: Path) -> list[Path]:
    """The file itself, or the checkpoint files directly inside a folder."""
    if source.is_file():
        return [source]
    with contextlib.suppress(OSError):
        return [child for child in source.iterdir() if child.suffix in CHECKPOINT_FILE_SUFFIXES and child.is_file()]
    return []


def check_output_file_name(output_flag: str, output: str | Path) -> None:
    """An output file's name names a file: not an existing folder, nor a path ending in `/` (which the file system
    would otherwise read as the folder's own name and write a file called like the folder)."""
    if str(output).endswith((os.sep, "/")) or os.path.isdir(output):
        raise MeliError(
            f"{output_flag} {output}: names a folder; give a file name (e.g. {Path(output) / 'predictions.jsonl'})"
        )


def is_readable_file(path: str | Path) -> bool:
    """Something to read lines from: a file, or a pipe or device such as `<(...)` (`/dev/fd/63`); not a folder."""
    return os.path.exists(path) and not os.path.isdir(path)


def check_output_spares_inputs(
    output_flag: str, output: str | Path, inputs: Mapping[str, Iterable[str | Path | None]], replaces_folder: bool
) -> None:
    """Refuse, before any work, an output that would destroy what the same command reads: the one rule of every
    command (paths resolved, links followed). An output file may not be a file read (an input file, or a checkpoint
    file of an input folder; a new file in a model's folder is fine); a folder the command replaces may not be, or
    hold, anything read. `inputs` maps each reading flag to its paths; paths that do not exist (Hub ids) are
    skipped."""
    if not replaces_folder:
        check_output_file_name(output_flag, output)
    target = Path(os.path.realpath(output))
    for flag, paths in inputs.items():
        for given in paths:
            if given is None or not os.path.exists(given):
                continue
            source = Path(os.path.realpath(given))
            if replaces_folder:
                if source == target or target in source.parents:
                    relation = "is" if source == target else "holds"
                    raise MeliError(
                        f"{output_flag} {output} {relation} {flag} {given}, which this command reads, and the "
                        "command replaces that folder: write to another folder"
                    )
            elif any(is_same_file(target, read) for read in _files_read_from(source)):
                what = "is" if source.is_file() else "is a file of"
                raise MeliError(
                    f"{output_flag} {output} {what} {flag} {given}, which this command reads: write to another file"
                )


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write the new file to; it replaces `path` only when the block ends without
    error, so an existing file is never truncated by a run that fails (on an error the temporary file is removed).
    A missing folder is created."""
    check_output_file_name("output", path)
    path = Path(os.path.realpath(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MeliError(f"{path.parent}: cannot create the output folder ({err.strerror})") from None
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside `path` to write a set of files into; it replaces `path` (moved aside, then deleted)
    only when the block ends without error, so a folder never holds files of two runs or half of one."""
    path = Path(os.path.realpath(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        temporary.mkdir()
    except OSError as err:
        raise MeliError(f"{path.parent}: cannot write the output there ({err.strerror})") from None
    try:
        yield temporary
        if path.exists():
            replaced = temporary.with_name(temporary.name + "-replaced")
            path.rename(replaced)
            temporary.rename(path)
            shutil.rmtree(replaced)
        else:
            temporary.rename(path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[IO[str]]:
    """A UTF-8 text stream whose content replaces `path` only once complete (see `atomic_path`). A device or pipe
    (`/dev/null`, `/dev/stdout`) is written directly: there is nothing to replace."""
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        with open(path, "w", encoding="utf-8", newline="") as stream:
            yield stream
        return
    with atomic_path(path) as temporary:
        try:
            stream = open(temporary, "x", encoding="utf-8", newline="")
        except OSError as err:
            raise MeliError(f"{Path(path).parent}: cannot write the output there ({err.strerror})") from None
        with stream:
            yield stream


def read_json_or_yaml(path: str | Path, label: str):
    """The content of a JSON (`.json`) or YAML file; `label` names it in the one-line error of an unreadable one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise MeliError(f"{label}: cannot be read ({str(err).strip().splitlines()[0]})") from None
