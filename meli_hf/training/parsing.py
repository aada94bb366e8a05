"""`scripts/train.py`'s parser over the argument groups of `arguments`, with `--model`'s defaults: flags or an
arguments file in, the four groups out; and back, the arguments of a run as a file holds them."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from transformers import HfArgumentParser, TrainingArguments
from transformers.hf_argparser import string_to_bool

from ..errors import MeliError, one_line_parser_errors
from ..files import check_output_spares_inputs, read_json_or_yaml
from ..private_apis import parser_actions
from .arguments import (
    DataTrainingArguments,
    HyperparameterSearchArguments,
    MeliTrainingArguments,
    ModelArguments,
    model_training_defaults,
)
from .registry import MODELS

USAGE = """train.py [--model {models}] [--data_dir DIR] [--output_dir DIR] [--word_vectors FILE]
                [--num_train_epochs N] [--learning_rate LR] [--class_balance P] [--max_seq_length N]
                [--overwrite_output_dir] [--resume_from_checkpoint CHECKPOINT|RUN_DIR|true]
                [--push_to_hub --hub_model_id USER/NAME] [--hp_search optuna --hp_trials N] [any flag below]
       train.py ARGUMENTS.json|ARGUMENTS.yaml"""
DESCRIPTION = (
    "Train an MLP, CNN, LSTM, TF-IDF or BETO classifier of MeLi 2019 product titles with the transformers Trainer; "
    "it evaluates balanced accuracy every epoch and saves a checkpoint that loads with the Auto classes. Defaults "
    "shown are those of --model (mlp unless given)."
)


TrainingArgumentGroups = tuple[
    ModelArguments, DataTrainingArguments, MeliTrainingArguments, HyperparameterSearchArguments
]


def training_argument_parser(model: str = "mlp") -> HfArgumentParser:
    """The four argument groups, with `model`'s training defaults."""
    if model not in MODELS:
        raise MeliError(f"--model {model!r} is unknown; choose one of {', '.join(MODELS)}.")
    parser = HfArgumentParser(
        (ModelArguments, DataTrainingArguments, MeliTrainingArguments, HyperparameterSearchArguments),
        usage=USAGE.format(models="{" + ",".join(MODELS) + "}"),
        description=DESCRIPTION,
    )
    parser.set_defaults(**model_training_defaults(model))
    for action in parser_actions(parser):
        # HfArgumentParser lets a bare `--flag` mean true for `bool` fields only; `bool | None` ones (a default that
        # depends on the run) take the same bare form.
        if action.type is string_to_bool and action.nargs is None:
            action.nargs, action.const = "?", True
    return one_line_parser_errors(parser)


def parse_training_arguments(args: list[str] | None = None) -> TrainingArgumentGroups:
    """Flags (`args`, or the command line) with `--model`'s defaults; a bad value is a `MeliError` naming it."""
    model, _ = _model_flag().parse_known_args(args)
    return _parsed(lambda: training_argument_parser(model.model).parse_args_into_dataclasses(args))


def parse_training_file(path: str | Path) -> TrainingArgumentGroups:
    """The same arguments from a JSON or YAML file, with its `model`'s defaults."""
    values = read_json_or_yaml(path, f"{path} (arguments)")
    if not isinstance(values, dict):
        raise MeliError(f"{path}: expected a mapping of argument names to values")
    model = values.get("model", "mlp")
    if not isinstance(model, str):
        raise MeliError(f"{path}: model: expected a name ({', '.join(MODELS)}), got {model!r}")
    parser = training_argument_parser(model)
    check_file_values(parser, values, path)
    groups = _parsed(lambda: parser.parse_dict(model_training_defaults(model) | values))
    check_output_spares_inputs("--output_dir", groups[2].output_dir, {"arguments file": [path]}, replaces_folder=True)
    return groups


def check_file_values(parser: HfArgumentParser, values: dict, path: str | Path) -> None:
    """`parse_dict` hands a file's JSON or YAML values to the dataclasses as they are, where a flag's value would
    have been converted by its type: each value must already be of the type its flag makes (a number where a number
    belongs, true or false for a switch, one of the choices), or the file and the field are named."""
    # The flag of each field (a switch that defaults to true also has a `--no_` flag of the same destination).
    actions = {action.dest: action for action in parser_actions(parser) if f"--{action.dest}" in action.option_strings}
    for name, value in values.items():
        action = actions.get(name)
        if action is None or value is None:  # unknown names: parse_dict names them; None: the field's "unset"
            continue
        many = action.nargs in ("+", "*")
        if isinstance(value, list) != many:
            raise MeliError(f"{path}: {name}: expected {'a list' if many else 'one value'}, got {value!r}")
        for item in value if many else [value]:
            if (problem := _value_problem(action, item)) is not None:
                raise MeliError(f"{path}: {name}: expected {problem}, got {item!r}")


def _value_problem(action: argparse.Action, value) -> str | None:
    """What `value` should have been for `action`'s flag, if it is not that."""
    if action.choices is not None:
        choices = [getattr(choice, "value", choice) for choice in action.choices]
        return None if getattr(value, "value", value) in choices else f"one of {', '.join(map(str, choices))}"
    if action.type is string_to_bool:
        return None if isinstance(value, bool) else "true or false"
    if action.type is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if action.type is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    return None


def run_arguments(
    model_args: ModelArguments, data_args: DataTrainingArguments, training_args: MeliTrainingArguments
) -> dict:
    """The arguments of a run that differ from `--model`'s defaults, as an arguments file holds them (what
    `parse_training_file` reads back to the same run). Hub tokens are never written out."""
    model = model_args.model
    defaults = training_argument_parser(model).parse_dict(model_training_defaults(model) | {"model": model})
    given = {}
    for value, default in zip((model_args, data_args, training_args), defaults):
        fields = value.to_dict() if isinstance(value, TrainingArguments) else dataclasses.asdict(value)
        default_fields = default.to_dict() if isinstance(default, TrainingArguments) else dataclasses.asdict(default)
        given |= {name: v for name, v in fields.items() if v != default_fields[name] and "token" not in name}
    return {"model": model} | given


def _model_flag() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", default="mlp")
    return one_line_parser_errors(parser)


def _parsed(parse):
    try:
        return parse()
    except MeliError:
        raise
    except (ValueError, TypeError) as err:  # TrainingArguments' own checks, unknown keys of a file
        raise MeliError(str(err).strip().splitlines()[0]) from err
