"""Run folders and resumable checkpoints: which folder a run may write into, and which checkpoint it resumes from.

A run never writes into a folder that holds an earlier run unless asked to: the Trainer would rotate the earlier
run's checkpoints away by modification time and leave files of both runs side by side. Asked to replace it
(`--overwrite_output_dir`), the earlier run is moved aside and deleted only once the new run is complete.
A checkpoint is checked whole before a resume, so that a missing optimizer state or a cut-off file is a clear
refusal instead of a silent restart of the optimizer.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import shutil
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint

from ..errors import MeliError
from ..files import check_output_spares_inputs, is_checkpoint_folder

logger = logging.getLogger(__name__)

SEARCH_FILE, BEST_RUN_FILE = "hp_search.json", "best_run.json"  # what `--hp_search` leaves
# A training run's files, and a hyperparameter search's.
RUN_FILES = (
    "trainer_state.json",
    "all_results.json",
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    SEARCH_FILE,
    BEST_RUN_FILE,
)
BEST_RUN_FOLDER = "best"  # where `--hp_retrain_best` trains the best run of a search
# Everything a training run, a search or their trackers leave in the run folder. A replaced run folder is deleted
# whole, so a folder that holds anything else (a user's file, data, predictions) is not replaced.
RUN_FOLDER_PATTERNS = (
    "checkpoint-*",
    "config.json",
    "generation_config.json",
    "model*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model*.bin",
    "configuration_meli.py",
    "modeling_meli.py",
    "tokenizer*.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "training_args.bin",
    "*results.json",
    "trainer_state.json",
    "README.md",
    "learning_curves.png",
    "runs",
    "mlflow.db",
    "mlartifacts",
    "mlruns",
    SEARCH_FILE,
    BEST_RUN_FILE,
    BEST_RUN_FOLDER,
)
PREVIOUS_RUN_SUFFIX = ".previous"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
OPTIMIZER_FILES = {"optimizer state": "optimizer.pt", "scheduler state": "scheduler.pt"}


def holds_run(folder: str | Path) -> bool:
    """Whether `folder` holds a training run: checkpoints or a saved model and its results."""
    folder = Path(folder)
    return folder.is_dir() and (
        any(child.is_dir() and child.name.startswith("checkpoint-") for child in folder.iterdir())
        or any((folder / name).exists() for name in RUN_FILES)
    )


def previous_run_folder(output_dir: str | Path) -> Path:
    output_dir = Path(output_dir)
    return output_dir.with_name(output_dir.name + PREVIOUS_RUN_SUFFIX)


def checkpoint_step(folder: Path) -> int | None:
    """N of a `checkpoint-N` folder."""
    prefix, _, step = folder.name.partition("-")
    return int(step) if prefix == "checkpoint" and step.isdigit() else None


def foreign_files(folder: Path) -> list[str]:
    """The names in a run folder that no run writes there."""
    return sorted(
        child.name
        for child in folder.iterdir()
        if not any(fnmatch.fnmatchcase(child.name, pattern) for pattern in RUN_FOLDER_PATTERNS)
    )


def check_output_dir(
    output_dir: str | Path,
    overwrite: bool,
    resume_checkpoint: Path | None,
    reads: Mapping[str, Iterable[str | Path | None]],
) -> bool:
    """Refuse, before any work, a folder whose earlier run, data or other files this run would damage; True when the
    run in it is to be replaced (`--overwrite_output_dir`), which `set_aside_previous_run` then moves away. `reads`:
    what the run reads, by flag; the run folder may not be or hold any of it (a resumed checkpoint of its own
    excepted)."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise MeliError(f"--output_dir {output_dir}: is a file, not a folder")
    resumes_own_run = resume_checkpoint is not None and resume_checkpoint.resolve().parent == output_dir.resolve()
    if resumes_own_run:
        reads = {
            flag: [p for p in paths if p is None or Path(p).resolve() != resume_checkpoint.resolve()]
            for flag, paths in reads.items()
        }
    check_output_spares_inputs("--output_dir", output_dir, reads, replaces_folder=True)
    if output_dir.is_dir():
        foreign = foreign_files(output_dir)
        if foreign:
            raise MeliError(
                f"--output_dir {output_dir} holds files that are not a training run's ({', '.join(foreign[:3])}"
                + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
                + "), which the run could write over or, replacing it, delete: give a new or empty folder"
            )
    if resumes_own_run:
        # Resuming a run in its own folder: the checkpoints saved after this one would be overwritten.
        step = checkpoint_step(resume_checkpoint)
        later = sorted(
            (c for c in output_dir.glob("checkpoint-*") if (checkpoint_step(c) or 0) > (step or 0)),
            key=checkpoint_step,
        )
        if later:
            raise MeliError(
                f"--resume_from_checkpoint {resume_checkpoint}: {output_dir} holds later checkpoints "
                f"({', '.join(c.name for c in later)}) that the resumed run would overwrite; resume from the last "
                "(--resume_from_checkpoint true) or move them away"
            )
        return False
    previous = previous_run_folder(output_dir)
    if overwrite and previous.exists():
        raise MeliError(
            f"--overwrite_output_dir: {previous} still holds the run an unfinished earlier replacement set aside; "
            "move it away or delete it first"
        )
    if holds_run(output_dir) and not overwrite:
        raise MeliError(
            f"--output_dir {output_dir} holds an earlier run; pick another folder, continue it with "
            "--resume_from_checkpoint true, or replace it with --overwrite_output_dir (it is deleted only once the "
            "new run is complete)"
        )
    return overwrite and holds_run(output_dir)


def set_aside_previous_run(output_dir: str | Path) -> Path:
    """Move an earlier run out of `output_dir` (to `<output_dir>.previous`) so the new run starts in a clean folder."""
    output_dir = Path(output_dir)
    previous = previous_run_folder(output_dir)
    output_dir.rename(previous)
    logger.warning("the earlier run in %s is kept in %s until this run is complete", output_dir, previous)
    return previous


def remove_previous_run(previous: Path | None) -> None:
    """Delete the run set aside, once its replacement is complete."""
    if previous is not None and previous.exists():
        shutil.rmtree(previous)
        logger.info("deleted the earlier run %s, replaced by this one", previous)


def asks_resume(value: str | None) -> bool:
    """Whether a `--resume_from_checkpoint` value asks for a resume (`false` or nothing does not)."""
    return value is not None and value.lower() != "false"


def resolve_resume_checkpoint(value: str | None, output_dir: str | Path) -> Path | None:
    """The checkpoint `--resume_from_checkpoint` names: `true` is the last one of `--output_dir`, a run folder its
    last one, a checkpoint folder itself; `false` or nothing: no resume. `check_checkpoint` tells if it is whole."""
    if not asks_resume(value):
        return None
    folder = Path(output_dir) if value.lower() == "true" else Path(value)
    if not folder.is_dir():
        raise MeliError(f"--resume_from_checkpoint {value}: {folder} not found")
    # A run folder holds its final model and state beside its checkpoints: the last checkpoint is what resumes.
    last = get_last_checkpoint(str(folder))
    if last is None and not is_checkpoint_folder(folder):
        raise MeliError(f"--resume_from_checkpoint {value}: {folder} holds no checkpoint (checkpoint-N folder)")
    return Path(last) if last is not None else folder


def _readable_zip(path: Path) -> bool:
    """`torch.save` writes a zip archive: a file cut short lacks the archive's closing directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _readable_safetensors(path: Path) -> bool:
    """The header parses and the file is as long as the tensors it announces."""
    try:
        with path.open("rb") as fh:
            header_size = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_size))
    except (OSError, ValueError):
        return False
    data_size = max((info["data_offsets"][1] for key, info in header.items() if key != "__metadata__"), default=0)
    return path.stat().st_size >= 8 + header_size + data_size


def check_checkpoint(checkpoint: Path) -> dict:
    """The checkpoint's trainer state, once the folder has everything a faithful resume needs."""

    def refuse(problem: str) -> MeliError:
        return MeliError(
            f"--resume_from_checkpoint {checkpoint} {problem}; resume from an intact checkpoint or start a new run"
        )

    if not is_checkpoint_folder(checkpoint):
        raise refuse("has no config.json (not a checkpoint folder)")
    weights = next((checkpoint / name for name in WEIGHT_FILES if (checkpoint / name).is_file()), None)
    if weights is None:
        raise refuse("has no model weights")
    if weights.name == "model.safetensors" and not _readable_safetensors(weights):
        raise refuse(f"has cut-off or unreadable weights ({weights.name})")
    if weights.name == "pytorch_model.bin" and not _readable_zip(weights):
        raise refuse(f"has cut-off or unreadable weights ({weights.name})")
    for what, name in OPTIMIZER_FILES.items():
        if not (checkpoint / name).is_file():
            raise refuse(f"has no {what} ({name}; saved with --save_only_model?), so the optimizer would restart")
        if not _readable_zip(checkpoint / name):
            raise refuse(f"has a cut-off or unreadable {what} ({name})")
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        int(state["global_step"])
    except FileNotFoundError:
        raise refuse("has no trainer_state.json") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise refuse("has a cut-off or unreadable trainer_state.json") from None
    return state
