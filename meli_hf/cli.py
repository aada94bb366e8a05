"""What the command-line scripts share: a user's mistake ends the run with one `error: ...` line and a non-zero exit,
never a traceback; `MELI_HF_DEBUG=1` (or a script's `--debug`) shows the traceback for a bug report."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

from .errors import MeliError

DEBUG_VARIABLE = "MELI_HF_DEBUG"
USAGE_ERROR_STATUS = 2


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").lower() in ("1", "true", "yes")


def fail(message: str) -> None:
    """End the process with one `error:` line (first line of the message only)."""
    lines = str(message).strip().splitlines() or ["unknown error"]
    print(f"error: {lines[0]}", file=sys.stderr)
    sys.exit(USAGE_ERROR_STATUS)


def one_line_parser_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make the parser report a bad flag as one `error:` line (argparse prints the usage block first)."""
    parser.error = lambda message: fail(f"{message} (see --help)")
    return parser


@contextlib.contextmanager
def user_errors(debug: bool = False) -> Iterator[None]:
    """Turn the errors a user can cause and fix (bad input, flags, settings, files and folders) into one line."""
    try:
        yield
    except (MeliError, OSError) as err:
        if debug or debugging():
            raise
        fail(str(err))
