"""The errors a user can cause and fix: a bad file, flag or setting. The command-line scripts print them as one
`error: ...` line (`MELI_HF_DEBUG=1` shows the traceback); anything else is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
from pathlib import Path


class MeliError(ValueError):
    """A problem with the user's input or settings; the message says what is wrong and what to do."""


class MeliDataError(MeliError):
    """A source file that cannot be used as it is; the message names the file, the line and the field."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, problem: str):
        where = str(path) + (f", line {line}" if line is not None else "") + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {problem}")


def one_line_parser_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make the parser raise a bad flag as a `MeliError` (argparse prints its usage block and exits), which
    `user_errors` reports as one line."""

    def error(message: str):
        raise MeliError(f"{message} (see --help)")

    parser.error = error
    return parser
