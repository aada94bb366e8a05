"""Every command's `--help` comes from its live parser: the real flags and defaults, without the model stack."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["train", "predict", "ensemble", "compact", "serve", "word_vectors", "sample"]
# What each help must name: a flag of its own (and, for train.py, a TrainingArguments flag and --model's defaults).
EXPECTED = {
    "train": ["--class_balance", "--linear_bigram_buckets", "--gradient_accumulation_steps", "(default: 0.002)"],
    "predict": ["--top_k", "--report"],
    "ensemble": ["--candidates"],
    "compact": ["--output"],
    "serve": ["--max_batch_size"],
    "word_vectors": ["--data_dir"],
    "sample": ["--rows"],
}
HELP_WITHOUT_TORCH = """
import runpy, sys
sys.argv = ["scripts/{command}.py", "--help"]
try:
    runpy.run_path("scripts/{command}.py", run_name="__main__")
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
print(sorted(module for module in ("torch", "transformers", "datasets") if module in sys.modules))
"""


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_the_live_flags(command):
    result = subprocess.run(
        [sys.executable, f"scripts/{command}.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert [expected for expected in EXPECTED[command] if expected not in text] == []


def test_help_shows_the_defaults_of_the_model_asked_for():
    result = subprocess.run(
        [sys.executable, "scripts/train.py", "--model", "lstm", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = " ".join(result.stdout.split())
    assert "--train_sampling_strategy" in text and "(default: group_by_length)" in text
    assert "(default: 0.001)" in text and "(default: 0.002)" not in text


@pytest.mark.parametrize("command", ["predict", "ensemble", "compact", "serve"])
def test_help_of_the_prediction_commands_imports_no_model_stack(command):
    program = HELP_WITHOUT_TORCH.format(command=command)
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
