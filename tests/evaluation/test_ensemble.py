"""`scripts/ensemble.py`: forward selection on validation, and the ensemble file that `predict.py --model` and
`train.py --teacher` take like one checkpoint."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from meli_hf.errors import MeliError
from meli_hf.evaluation.ensemble import forward_selection
from meli_hf.evaluation.metrics import ClassificationMetrics
from meli_hf.inference.predictor import Predictor

from ..conftest import train_checkpoint
from ..training.test_optimization import train_steps

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def one_hot(rows: list[int], classes: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(rows), classes).float()


def test_forward_selection_adds_what_helps_and_stops():
    references = np.array([0, 1, 2, 0, 1, 2])
    candidates = {
        # right on rows 0-3, sure of it
        "a": one_hot([0, 1, 2, 0, 0, 0]) * 0.9 + 0.05,
        # right on rows 4-5, surer there than `a` is wrong
        "b": torch.tensor([[0.4, 0.3, 0.3]] * 4 + [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
        "useless": torch.full((6, 3), 1 / 3),
    }
    steps = forward_selection(candidates, references, ClassificationMetrics())
    assert [step["added"] for step in steps] == ["a", "b"]
    assert steps[0]["validation"]["balanced_accuracy"] < steps[1]["validation"]["balanced_accuracy"] == 1.0


@pytest.fixture(scope="module")
def second_checkpoint(sample_dir, tmp_path_factory) -> Path:
    return train_checkpoint(sample_dir, tmp_path_factory.mktemp("tfidf"), "tfidf", 1)


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / f"{script}.py"), *args],
        capture_output=True,
        text=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )


def test_an_ensemble_file_predicts_and_teaches_as_its_members(sample_dir, teacher_dir, second_checkpoint, tmp_path):
    ensemble_file = tmp_path / "picked" / "ensemble.json"
    candidates = [str(teacher_dir), str(second_checkpoint)]
    result = run_script(
        "ensemble", "--candidates", *candidates, "--data_dir", str(sample_dir), "--output", str(ensemble_file)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ensemble = json.loads(ensemble_file.read_text())
    assert set(ensemble["members"]) <= set(candidates) and ensemble["members"]
    assert ensemble["selection"][0]["added"] == max(
        candidates, key=lambda c: ensemble["scores"]["validation"]["candidates"][c]["balanced_accuracy"]
    )
    assert set(ensemble["scores"]) == {"validation", "test"}

    # predict.py scores the file as the ensemble of its members, as the file says
    evaluated = run_script(
        "predict",
        "--model",
        str(ensemble_file),
        "--input",
        str(sample_dir / "spanish.test.jsonl.gz"),
        "--evaluate",
        "--output",
        os.devnull,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    test_score = ensemble["scores"]["test"]["ensemble"]["balanced_accuracy"]
    assert f"balanced_accuracy={test_score:.4f}" in evaluated.stderr
    titles = ["Zapatillas Nike Air Talle 42", "Notebook Lenovo 15 pulgadas"]
    assert Predictor(str(ensemble_file)).predict(titles, top_k=3) == Predictor(ensemble["members"]).predict(
        titles, top_k=3
    )

    # --teacher takes it as the members
    common = ["--model", "mlp", "--max_steps", "2", "--seed", "5"]
    by_file = train_steps(sample_dir, tmp_path / "file", *common, "--teacher", str(ensemble_file))
    by_members = train_steps(sample_dir, tmp_path / "members", *common, "--teacher", *ensemble["members"])
    for name, weights in by_members.items():
        torch.testing.assert_close(by_file[name], weights, msg=name)


def test_bad_ensemble_input_is_one_line(sample_dir, teacher_dir, tmp_path):
    twice = run_script(
        "ensemble",
        "--candidates",
        str(teacher_dir),
        str(teacher_dir),
        "--data_dir",
        str(sample_dir),
        "--output",
        str(tmp_path / "e.json"),
    )
    assert twice.stderr.strip().splitlines() == ["error: --candidates: a checkpoint is named twice"]
    not_json = run_script("ensemble", "--candidates", str(teacher_dir), "--output", str(tmp_path / "e.txt"))
    assert not_json.stderr.strip().splitlines() == [
        f"error: --output {tmp_path / 'e.txt'}: an ensemble file ends in .json"
    ]
    missing = run_script(
        "ensemble",
        "--candidates",
        str(tmp_path / "nope"),
        "--data_dir",
        str(sample_dir),
        "--output",
        str(tmp_path / "e.json"),
    )
    assert (
        missing.stderr.strip().splitlines()[-1]
        == f"error: cannot load {tmp_path / 'nope'} (--candidates): no such folder"
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"members": []}')
    with pytest.raises(MeliError, match="its members are no list of checkpoint names"):
        Predictor(str(broken))
    assert not (tmp_path / "e.json").exists()
