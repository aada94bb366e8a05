#!/usr/bin/env python
"""`--help` for the scripts without importing torch and transformers, which takes about 10 s on 2 cores.

Each script's argument parser is recorded as data in `argument_help.json` beside this file: its groups and, for every
flag, what argparse prints. `--help` replays the record into a plain `argparse` parser, which formats it for the
terminal at hand exactly as the live parser would. A record made with another transformers version is not used (the
script builds its live parser), and tests/test_cli.py checks that the record matches the live parsers.

    python scripts/argument_help.py       # write the record again after changing a flag
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version
from pathlib import Path

RECORD = Path(__file__).with_name("argument_help.json")
HELP_FLAGS = ("-h", "--help")


def wants_help(argv: list[str]) -> bool:
    """Whether argparse would print the help for `argv` (a help flag before any `--`)."""
    flags = argv[: argv.index("--")] if "--" in argv else argv
    return any(flag in HELP_FLAGS for flag in flags)


def describe_parser(parser: argparse.ArgumentParser) -> dict:
    """What `parser.format_help()` reads from `parser`, as JSON data (defaults and choices as the text shown)."""
    groups = []
    for group in parser._action_groups:
        actions = []
        for action in group._group_actions:
            if isinstance(action, argparse._HelpAction):
                continue  # every parser adds its own
            actions.append(
                {
                    "option_strings": action.option_strings,
                    "dest": action.dest,
                    "nargs": action.nargs,
                    "default": action.default if action.default == argparse.SUPPRESS else str(action.default),
                    "choices": None if action.choices is None else [str(choice) for choice in action.choices],
                    "required": action.required,
                    "metavar": action.metavar,
                    "help": action.help,
                }
            )
        groups.append({"title": group.title, "description": group.description, "actions": actions})
    formatter = parser.formatter_class.__name__
    if getattr(argparse, formatter, None) is not parser.formatter_class:
        raise ValueError(f"{parser.prog}: give the parser one of argparse's formatter classes, not {formatter}")
    return {"usage": parser.usage, "description": parser.description, "formatter_class": formatter, "groups": groups}


def replay_parser(description: dict, prog: str) -> argparse.ArgumentParser:
    """A parser that prints the help of the parser `describe_parser` described (it parses nothing useful)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        usage=description["usage"],
        description=description["description"],
        formatter_class=getattr(argparse, description["formatter_class"]),
    )
    for index, group in enumerate(description["groups"]):
        # The first two groups (positional arguments, options) are the parser's own.
        target = parser if index < 2 else parser.add_argument_group(group["title"], group["description"])
        for action in group["actions"]:
            options = {key: action[key] for key in ("default", "choices", "help") if action[key] is not None}
            for key in ("default", "help"):  # argparse tests these for SUPPRESS by identity
                if options.get(key) == argparse.SUPPRESS:
                    options[key] = argparse.SUPPRESS
            if action["metavar"] is not None:  # JSON turns a tuple (a name per value) into a list
                metavar = action["metavar"]
                options["metavar"] = tuple(metavar) if isinstance(metavar, list) else metavar
            if action["option_strings"]:
                options |= {"dest": action["dest"], "required": action["required"]}
            if action["nargs"] == 0:
                options["action"] = "store_true"  # a switch: no value shown
            else:
                options["nargs"] = action["nargs"]
            target.add_argument(*(action["option_strings"] or [action["dest"]]), **options)
    return parser


def print_recorded_help(script: str, argv: list[str], record_path: Path = RECORD) -> bool:
    """Print `script`'s help from the record when `argv` asks for it; False when it does not, or when the record
    cannot stand for the live parser (missing, or made with another transformers version)."""
    if not wants_help(argv) or not record_path.is_file():
        return False
    record = json.loads(record_path.read_text(encoding="utf-8"))
    if record["transformers"] != version("transformers") or script not in record["scripts"]:
        return False
    recorded = record["scripts"][script]
    parser = replay_parser(recorded, prog=f"{script}.py")
    model_defaults = recorded.get("model_defaults")
    if model_defaults is not None:
        model = model_flag(argv)
        if model not in model_defaults:
            return False  # the live parser names the mistake
        parser.set_defaults(**model_defaults[model])
    parser.print_help()
    return True


def model_flag(argv: list[str]) -> str:
    """`--model`'s value in `argv` (mlp when absent), as `train.py` reads it before building its parser."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", default="mlp")
    known, _ = parser.parse_known_args([arg for arg in argv if arg not in HELP_FLAGS])
    return known.model


def record_parsers() -> dict:
    """Describe the live parsers of `train.py` (with every model's defaults), `predict.py` and `ensemble.py`."""
    import ensemble
    import predict

    from meli_hf.training.arguments import model_training_defaults, training_argument_parser
    from meli_hf.training.registry import MODELS

    train = describe_parser(training_argument_parser())
    train["model_defaults"] = {
        model: {name: str(value) for name, value in model_training_defaults(model).items()} for model in MODELS
    }
    scripts = {
        "train": train,
        "predict": describe_parser(predict.argument_parser()),
        "ensemble": describe_parser(ensemble.argument_parser()),
    }
    return {"transformers": version("transformers"), "scripts": scripts}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    RECORD.write_text(json.dumps(record_parsers(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {RECORD}")
