"""No command writes over what it reads: each case runs the command as a user would and checks that it is refused in
one line and that every file it reads is still there, unchanged."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """A command line as a user types it: `scripts/NAME.py ...` or `-m module ...`."""
    command = [sys.executable, *(args if args[0] == "-m" else (str(ROOT / "scripts" / args[0]), *args[1:]))]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        env=os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
    )


def refused(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stdout[-1000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    for word in words:
        assert word in lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def data_dir(sample_dir, tmp_path) -> Path:
    """A copy of the sample's files, as a user's data folder."""
    folder = tmp_path / "data"
    shutil.copytree(sample_dir, folder)
    return folder


@pytest.fixture
def model_dir(teacher_dir, tmp_path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(teacher_dir, folder)
    return folder


def test_a_run_folder_that_is_or_holds_the_data_is_refused(data_dir, tmp_path):
    tiny = ["--max_train_samples", "64", "--num_train_epochs", "1"]
    # The data folder as the run folder, even when it also holds an earlier run that is to be replaced.
    (data_dir / "trainer_state.json").write_text("{}")
    before = snapshot(data_dir)
    result = run(
        "train.py", "--data_dir", str(data_dir), "--output_dir", str(data_dir), "--overwrite_output_dir", *tiny
    )
    refused(result, "--output_dir", "--data_dir")
    assert snapshot(data_dir) == before
    # The current folder as the run folder, the data in a folder inside it.
    result = run(
        "train.py", "--data_dir", "./data", "--output_dir", ".", "--overwrite_output_dir", *tiny, cwd=tmp_path
    )
    refused(result, "holds --data_dir ./data")
    assert snapshot(data_dir) == before
    # Through a link: the link is followed.
    (tmp_path / "link").symlink_to(data_dir)
    result = run("train.py", "--data_dir", str(data_dir), "--output_dir", str(tmp_path / "link"), *tiny)
    refused(result, "--data_dir")
    assert snapshot(data_dir) == before


def test_overwrite_output_dir_replaces_only_a_run(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "trainer_state.json").write_text("{}")
    (run_dir / "notes.txt").write_text("mine")
    result = run(
        "train.py", "--data_dir", str(data_dir), "--output_dir", str(run_dir), "--overwrite_output_dir",
        "--max_train_samples", "64", "--num_train_epochs", "1",
    )  # fmt: skip
    refused(result, "notes.txt", "not a training run's")
    assert (run_dir / "notes.txt").read_text() == "mine"
    assert (run_dir / "trainer_state.json").is_file()


def test_an_arguments_file_inside_the_run_folder_is_refused(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    arguments = run_dir / "run.json"
    arguments.write_text(json.dumps({"model": "mlp", "data_dir": str(data_dir), "output_dir": str(run_dir)}))
    refused(run("train.py", str(arguments)), "arguments file")
    assert arguments.is_file()


def test_a_teacher_or_word_vectors_inside_the_run_folder_are_refused(sample_dir, model_dir, tmp_path):
    common = ["--data_dir", str(sample_dir), "--max_train_samples", "64", "--num_train_epochs", "1"]
    result = run("train.py", *common, "--output_dir", str(tmp_path), "--teacher", str(model_dir))
    refused(result, "holds --teacher")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    vectors = run_dir / "vectors.txt.gz"
    shutil.copy(sample_dir / "word_vectors.txt.gz", vectors)
    result = run(
        "train.py", *common, "--output_dir", str(run_dir), "--overwrite_output_dir", "--word_vectors", str(vectors)
    )
    refused(result, "holds --word_vectors")
    assert vectors.is_file()


def test_predict_never_writes_over_its_model(model_dir, tmp_path):
    before = snapshot(model_dir)
    refused(run("predict.py", "--model", str(model_dir), "--output", str(model_dir / "config.json"), "Zapatillas"))
    (tmp_path / "weights-link.csv").symlink_to(model_dir / "model.safetensors")
    refused(run("predict.py", "--model", str(model_dir), "--output", str(tmp_path / "weights-link.csv"), "Zapatillas"))
    ensemble = tmp_path / "ensemble.json"
    ensemble.write_text(json.dumps({"members": ["model"]}))
    refused(run("predict.py", "--model", str(ensemble), "--output", str(ensemble), "Zapatillas"), "--model")
    refused(
        run("predict.py", "--model", str(ensemble), "--output", str(model_dir / "tokenizer.json"), "Zapatillas"),
        "is a file of --model",
    )
    refused(run("predict.py", "--model", str(model_dir), "--report", str(tmp_path), "--input", str(ensemble)))
    assert snapshot(model_dir) == before
    assert json.loads(ensemble.read_text()) == {"members": ["model"]}
    # A new file in the model's folder is fine, and so is replacing it on a second run.
    for _ in range(2):
        result = run("predict.py", "--model", str(model_dir), "--output", str(model_dir / "predictions.csv"), "Casa")
        assert result.returncode == 0, result.stderr[-2000:]
    assert (model_dir / "predictions.csv").read_text().startswith("title,")


def test_ensemble_never_writes_over_a_candidate(model_dir, sample_dir, tmp_path):
    before = snapshot(model_dir)
    ensemble = tmp_path / "ensemble.json"
    ensemble.write_text(json.dumps({"members": [str(model_dir)]}))
    common = ["--data_dir", str(sample_dir)]
    refused(run("ensemble.py", "--candidates", str(ensemble), *common, "--output", str(ensemble)), "--candidates")
    refused(run("ensemble.py", "--candidates", str(model_dir), *common, "--output", str(model_dir / "config.json")))
    assert snapshot(model_dir) == before
    assert json.loads(ensemble.read_text()) == {"members": [str(model_dir)]}


def test_compact_never_replaces_the_folder_of_its_model(model_dir, tmp_path):
    before = snapshot(model_dir)
    refused(run("compact.py", "--model", str(model_dir), "--output", str(tmp_path)), "holds --model")
    refused(run("compact.py", "--model", str(model_dir), "--output", str(model_dir)), "is --model")
    assert snapshot(model_dir) == before


def test_word_vectors_never_write_over_the_data(data_dir):
    before = snapshot(data_dir)
    train = next(data_dir.glob("*train*"))
    refused(run("-m", "meli_hf.cli.word_vectors", "--data_dir", str(data_dir), "--output", str(train)), "--data_dir")
    assert snapshot(data_dir) == before


def test_relative_ensemble_members_are_read_beside_the_file(model_dir, tmp_path):
    """The same ensemble file answers the same from any folder; a member path that only the current folder gives
    a meaning to is refused."""
    ensemble = tmp_path / "ensemble.json"
    ensemble.write_text(json.dumps({"members": ["model"]}))
    answers = []
    for folder in (tmp_path, ROOT):
        result = run("predict.py", "--model", str(ensemble), "Zapatillas Nike", cwd=folder)
        assert result.returncode == 0, result.stderr[-2000:]
        answers.append(result.stdout)
    assert answers[0] == answers[1]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = elsewhere / "ensemble.json"
    shutil.copy(ensemble, moved)
    refused(run("predict.py", "--model", str(moved), "Zapatillas Nike", cwd=tmp_path), "no folder beside the file")
