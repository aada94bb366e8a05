"""Loading checkpoints (meli_hf.hub.load_pretrained): a checkpoint's own Python code never runs unless the
user passed --trust_remote_code, whatever standard input answers transformers' "run the custom code?" prompt."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLANTED_CODE = """
from pathlib import Path

Path({marker!r}).write_text("the checkpoint's code ran")

from transformers import PreTrainedConfig


class PlantedConfig(PreTrainedConfig):
    model_type = "planted"
"""


@pytest.fixture
def planted_checkpoint(tmp_path) -> tuple[Path, Path]:
    """A folder that looks like a checkpoint whose config and tokenizer name a Python file of their own
    (`auto_map`), and the file that code writes when it runs."""
    folder, marker = tmp_path / "planted", tmp_path / "marker"
    folder.mkdir()
    auto_map = {
        "AutoConfig": "planted.PlantedConfig",
        "AutoModelForSequenceClassification": "planted.PlantedModel",
        "AutoTokenizer": ["planted.PlantedTokenizer", None],
    }
    for name in ("config.json", "tokenizer_config.json"):
        (folder / name).write_text(json.dumps({"model_type": "planted", "auto_map": auto_map}))
    (folder / "planted.py").write_text(PLANTED_CODE.format(marker=str(marker)))
    return folder, marker


def run_script(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A script run as by a pipeline that answers every prompt with `y`."""
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        input="y\n" * 10,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ | {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(cwd / "modules")},
    )


REFUSAL = "error: refusing to load {folder} ({flag}): it ships Python code of its own"


def test_predict_never_runs_a_checkpoints_code_without_trust_remote_code(planted_checkpoint, tmp_path):
    folder, marker = planted_checkpoint
    result = run_script("predict.py", "--model", str(folder), "Heladera Gafa", cwd=tmp_path)
    assert result.returncode == 2 and not marker.exists()
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if line.startswith("error:")
    ]
    assert result.stderr.startswith(REFUSAL.format(folder=folder, flag="--model"))
    # The flag is the one switch: with it, the code runs (and this folder then fails as a checkpoint).
    result = run_script("predict.py", "--model", str(folder), "Heladera Gafa", "--trust_remote_code", cwd=tmp_path)
    assert result.returncode != 0 and marker.exists()


@pytest.mark.parametrize(
    "model, flag",
    [("beto", "--model_name_or_path"), ("mlp", "--resume_from_checkpoint"), ("mlp", "--teacher")],
)
def test_training_never_runs_a_checkpoints_code_without_trust_remote_code(
    model, flag, planted_checkpoint, sample_dir, tmp_path
):
    folder, marker = planted_checkpoint
    run = ["--data_dir", str(sample_dir), "--output_dir", str(tmp_path / "run"), "--log_level", "warning"]
    result = run_script("train.py", "--model", model, flag, str(folder), *run, cwd=tmp_path)
    assert result.returncode == 2 and not marker.exists()
    assert result.stderr.strip().splitlines()[-1].startswith(REFUSAL.format(folder=folder, flag=flag))
    assert not (tmp_path / "run").exists()  # refused before anything was written
