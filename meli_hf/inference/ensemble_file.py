"""Ensemble files of `scripts/ensemble.py`: a JSON file whose `members` name the checkpoints whose probabilities
are averaged. Every command that takes a `--model` (or `--teacher`) reads them through here."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import MeliError
from ..files import read_json_or_yaml


def is_ensemble_file(path: str | Path) -> bool:
    return Path(path).is_file() and Path(path).suffix == ".json"


def checkpoint_paths(model_name_or_path: str | Path) -> list[str]:
    """The checkpoints a `--model` names: itself, or the members of an ensemble file (`scripts/ensemble.py`). A
    relative member is a folder beside the file, whatever folder the command runs in; a member that is no such
    folder stays as written (a Hub id)."""
    if not is_ensemble_file(model_name_or_path):
        return [str(model_name_or_path)]
    ensemble = read_json_or_yaml(model_name_or_path, f"{model_name_or_path} (ensemble file)")
    if not isinstance(ensemble, dict) or "members" not in ensemble:
        raise MeliError(f"{model_name_or_path}: not an ensemble file of scripts/ensemble.py (no members)")
    members = ensemble["members"]
    if not isinstance(members, list) or not members or not all(isinstance(member, str) for member in members):
        raise MeliError(f"{model_name_or_path}: its members are no list of checkpoint names")
    folder = Path(model_name_or_path).parent
    paths = []
    for member in members:
        if (folder / member).is_dir():
            paths.append(str(folder / member))
        elif os.path.exists(member):  # relative to the current folder: another folder would read another model
            raise MeliError(
                f"{model_name_or_path}: member {member} is no folder beside the file, which is where relative "
                "members are read from; write it relative to the file's folder, or as an absolute path"
            )
        else:
            paths.append(member)
    return paths


def paths_read(models: Iterable[str | Path]) -> list[str | Path]:
    """Everything `--model` values make a command read: checkpoint folders, ensemble files and their members."""
    return [path for model in models for path in dict.fromkeys([model, *checkpoint_paths(model)])]
