"""What the command-line scripts share: a user's mistake ends the run with one `error: ...` line and a non-zero exit,
never a traceback (`MELI_HF_DEBUG=1`, or a script's `--debug`, shows the traceback for a bug report), and the
process-wide settings that are the script's call, never the library's (glibc's allocator)."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator

from ..errors import MeliError

DEBUG_VARIABLE = "MELI_HF_DEBUG"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
USAGE_ERROR_STATUS = 2


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").lower() in ("1", "true", "yes")


def fail(message: str) -> None:
    """End the process with one `error:` line (first line of the message only)."""
    lines = str(message).strip().splitlines() or ["unknown error"]
    print(f"error: {lines[0]}", file=sys.stderr)
    sys.exit(USAGE_ERROR_STATUS)


def positive_int(text: str) -> int:
    """An argparse `type`: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return value


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the checkpoints a `Predictor` loads and where it runs, shared by predict.py and serve.py."""
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        help="Checkpoint folder, ONNX copy (scripts/compact.py), Hub id or ensemble file (scripts/ensemble.py); given "
        "several times: an ensemble that averages their probabilities.",
    )
    parser.add_argument(
        "--max_length",
        type=positive_int,
        help="Tokens kept per title. Default: each checkpoint's training length (--max_seq_length).",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... Default: a GPU when present, else the CPU.")
    parser.add_argument(
        "--trust_remote_code",
        action="store_true",
        help="Run Python code that a checkpoint ships (its config's auto_map); without it such a checkpoint is "
        "refused.",
    )


def predictor_from_arguments(args: argparse.Namespace, batch_size: int, threads: int | None = None):
    """The predictor that `add_checkpoint_arguments`' flags describe (`inference.loading.load_predictor`).
    `threads`: those of a forward pass, onnxruntime's own or torch's (process-wide: the script's call)."""
    from ..inference.loading import load_predictor, serves_onnx_copies

    if not serves_onnx_copies(args.model):
        import torch
        import transformers

        if threads:
            torch.set_num_threads(threads)
        transformers.utils.logging.disable_progress_bar()  # one line per event: no bar per checkpoint loaded
    return load_predictor(
        args.model,
        batch_size=batch_size,
        max_length=args.max_length,
        device=args.device,
        trust_remote_code=args.trust_remote_code,
        onnx_threads=threads,
    )


class Terminated(BaseException):
    """SIGTERM (what `timeout`, systemd and docker send), raised where the process is, so that every `finally` block
    runs (a half-written output is removed) before it exits."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


@contextlib.contextmanager
def user_errors(debug: bool = False) -> Iterator[None]:
    """Turn the errors a user can cause and fix (bad input, flags, settings, files and folders) into one line, and
    Ctrl-C or SIGTERM into one line and the shell's status (130, 143), after the cleanup they interrupt."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:  # signal handlers belong to the main thread
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except (MeliError, OSError) as err:
        if debug or debugging():
            raise
        fail(str(err))
    except (KeyboardInterrupt, Terminated) as err:
        if debug or debugging():
            raise
        interrupted = isinstance(err, KeyboardInterrupt)
        print(f"error: {'interrupted' if interrupted else 'terminated'}", file=sys.stderr)
        sys.exit(128 + (signal.SIGINT if interrupted else signal.SIGTERM))
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def set_malloc_option(parameter: int, value: int) -> None:
    """glibc's `mallopt`; other platforms, and Linux without glibc, are left as they are."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(parameter, value)


def keep_freed_memory_in_heap() -> None:
    """Let glibc reuse freed large blocks instead of returning them to the OS.

    glibc hands every allocation over 32 MB back to the kernel when it is freed. Trained dense (another `--optim`,
    NCCL, `--sparse_embeddings false`), the gradient of the word embeddings (50,002 x 300 floats, 60 MB) is
    allocated anew at every step, so each step page-faults 60 MB in again: a large share of an MLP step
    (bench/training_throughput.py). Sparse gradients hold only the rows a batch reads.
    """
    set_malloc_option(M_MMAP_THRESHOLD, 1 << 30)
    set_malloc_option(M_TRIM_THRESHOLD, 1 << 30)
