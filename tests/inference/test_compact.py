"""Compact serving copies (meli_hf.inference.compact, scripts/compact.py): int8 tables, loaded back exactly as
saved."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from meli_hf.errors import MeliError
from meli_hf.inference.compact import compact_checkpoint
from meli_hf.inference.predictor import Predictor

from ..conftest import train_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TITLES = ["Heladera Gafa No Frost 300 litros", "Zapatillas Nike Air Talle 42", "Notebook Lenovo 15 pulgadas 8gb"]


@pytest.fixture(scope="module")
def lstm_with_linear_part(sample_dir, tmp_path_factory) -> Path:
    flags = ["--linear_bigram_buckets", "512"]
    return train_checkpoint(sample_dir, tmp_path_factory.mktemp("lstm"), "lstm", 2, *flags)


def logits(folder: Path, titles: list[str]) -> torch.Tensor:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(**tokenizer(titles, padding=True, return_tensors="pt")).logits


def test_a_compact_copy_is_a_quarter_of_the_tables_and_loads_back_as_saved(lstm_with_linear_part, tmp_path):
    source, compact = lstm_with_linear_part, tmp_path / "compact"
    before, after = compact_checkpoint(source, compact, format="torch")
    float_model = AutoModelForSequenceClassification.from_pretrained(source)
    tables = float_model.embeddings.weight.numel() + float_model.linear_ngrams.weight.weight.numel()
    # The tables' 4 bytes per value become 1, plus a float32 scale per row; every other weight is as it was.
    rows = float_model.embeddings.weight.shape[0] + float_model.linear_ngrams.weight.weight.shape[0]
    assert before - after == pytest.approx(3 * tables - 4 * rows, abs=4096)
    loaded = AutoModelForSequenceClassification.from_pretrained(compact)
    assert loaded.config.int8_tables and loaded.embeddings.weight.dtype == torch.int8
    assert loaded.linear_ngrams.weight.weight.dtype == torch.int8
    # Loading gives back the model that was saved, exactly: what is measured on the copy is what serves.
    expected = float_model.eval().with_int8_tables()
    tokenizer = AutoTokenizer.from_pretrained(compact)
    inputs = tokenizer(TITLES, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(loaded.eval()(**inputs).logits, expected(**inputs).logits)
    # ... and close to the float32 model: each row is rounded to 1/127 of its largest weight.
    assert torch.allclose(logits(compact, TITLES), logits(source, TITLES), atol=0.05)
    reference = Predictor(str(source)).predict(TITLES)
    assert [p[0]["label"] for p in Predictor(str(compact)).predict(TITLES)] == [p[0]["label"] for p in reference]
    assert "## Compact copy" in (compact / "README.md").read_text()
    with pytest.raises(ValueError, match="int8 tables .* predicts"):
        loaded.train()(**inputs)


def test_compact_refuses_what_it_cannot_do_and_overwrites_nothing(lstm_with_linear_part, sample_dir, tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "compact.py"), *args],
            capture_output=True,
            text=True,
            env=os.environ | {"HF_HUB_OFFLINE": "1"},
        )

    result = run("--model", str(lstm_with_linear_part), "--output", str(existing))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: --output {existing} exists; give a new folder (nothing is overwritten)"
    ]
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]
    result = run("--model", str(tmp_path / "missing"), "--output", str(tmp_path / "new"))
    assert result.stderr.strip() == f"error: --model {tmp_path / 'missing'}: not a checkpoint folder (no config.json)"
    result = run("--output", str(tmp_path / "new"))
    assert result.returncode == 2 and result.stderr.startswith("error: the following arguments are required: --model")
    assert not (tmp_path / "new").exists()

    compact = tmp_path / "compact"
    result = run("--model", str(lstm_with_linear_part), "--output", str(compact), "--format", "torch")
    assert result.returncode == 0 and result.stdout.startswith(f"wrote {compact}: weights ")
    with pytest.raises(MeliError, match="is a compact copy already"):
        compact_checkpoint(compact, tmp_path / "again", format="torch")
    tfidf = train_checkpoint(sample_dir, tmp_path / "tfidf", "tfidf", 1)
    with pytest.raises(MeliError, match="only mlp, cnn and lstm checkpoints"):
        compact_checkpoint(tfidf, tmp_path / "tfidf-compact", format="torch")
