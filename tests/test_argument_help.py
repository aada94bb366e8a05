"""`--help` of the scripts from the recorded parsers (scripts/argument_help.py): the same text as the live parsers,
without importing torch or transformers."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import transformers

from meli_hf.training.arguments import training_argument_parser
from meli_hf.training.registry import MODELS

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
OUT_OF_DATE = "scripts/argument_help.json is out of date: run `python scripts/argument_help.py`"
RECORDED_VERSION = json.loads((SCRIPTS / "argument_help.json").read_text())["transformers"]
# Another transformers (a newer release installed by CI) has other flags: the scripts then print the live help.
requires_recorded_transformers = pytest.mark.skipif(
    RECORDED_VERSION != transformers.__version__,
    reason=f"scripts/argument_help.json records transformers {RECORDED_VERSION}, not the installed "
    f"{transformers.__version__}: run `python scripts/argument_help.py`",
)


def script_module(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SCRIPTS))  # the scripts import argument_help as their neighbour
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


def script_help(script: str, *args: str) -> tuple[str, set[str]]:
    """The help a script prints at 100 columns, and the modules it imported on the way."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(SCRIPTS / f"{script}.py"), *args],
        capture_output=True,
        text=True,
        env=os.environ | {"COLUMNS": "100"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return result.stdout, imported


@requires_recorded_transformers
@pytest.mark.parametrize("model", list(MODELS))
def test_train_help_is_the_live_parsers_without_torch(model, monkeypatch):
    shown, imported = script_help("train", "--model", model, "--help")
    monkeypatch.setenv("COLUMNS", "100")
    assert shown == training_argument_parser(model).format_help(), OUT_OF_DATE
    assert "torch" not in imported and "transformers" not in imported, OUT_OF_DATE


@requires_recorded_transformers
@pytest.mark.parametrize("script", ["predict", "ensemble"])
def test_help_of_the_other_scripts_is_the_live_parsers_without_torch(script, monkeypatch):
    shown, imported = script_help(script, "-h")
    monkeypatch.setenv("COLUMNS", "100")
    parser = script_module(script).argument_parser()
    parser.prog = f"{script}.py"
    assert shown == parser.format_help(), OUT_OF_DATE
    assert "torch" not in imported and "transformers" not in imported, OUT_OF_DATE


@requires_recorded_transformers
def test_the_record_stands_for_the_live_parser_only_where_it_can(tmp_path, capsys):
    argument_help = script_module("argument_help")
    record = json.loads(argument_help.RECORD.read_text())
    assert argument_help.print_recorded_help("train", ["--model", "cnn", "--help"], argument_help.RECORD)
    assert "--model MODEL" in capsys.readouterr().out

    other_version = tmp_path / "other.json"
    other_version.write_text(json.dumps(record | {"transformers": "0.0"}))
    unknown_model = ["--model", "nope", "--help"]
    for script, argv, path in (
        ("train", ["--help"], other_version),  # flags of another transformers
        ("train", ["--help"], tmp_path / "missing.json"),
        ("train", ["--model", "cnn"], argument_help.RECORD),  # no help asked
        ("train", ["--", "--help"], argument_help.RECORD),  # a value, not a flag
        ("train", unknown_model, argument_help.RECORD),  # the live parser names the mistake
        ("evaluate", ["--help"], argument_help.RECORD),
    ):
        assert not argument_help.print_recorded_help(script, argv, path), (script, argv, path)
    assert capsys.readouterr().out == ""


def test_help_with_an_unknown_model_is_the_live_parsers_error():
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "train.py"), "--model", "nope", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --model 'nope' is unknown; choose one of mlp, cnn, lstm, tfidf, beto."
    ]
