import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from meli_hf.errors import MeliError
from meli_hf.models.configuration_meli import MeliMLPConfig
from meli_hf.models.modeling_meli import MeliMLPForSequenceClassification
from meli_hf.training.optimization import LazyAdamW, clip_gradient_norm_, embedding_tables, set_sparse_gradients
from meli_hf.training.parsing import parse_training_arguments
from meli_hf.training.run import run_training

ROOT = Path(__file__).resolve().parents[2]
# Steps that end where the tests can compare weights: no evaluation, no best-model reload, no dropout noise.
SHORT_RUN = ["--save_strategy", "no", "--eval_strategy", "no", "--load_best_model_at_end", "false"]
SHORT_RUN += ["--disable_tqdm", "true", "--dropout", "0"]


def train_steps(sample_dir, output_dir, *flags) -> dict[str, torch.Tensor]:
    """Weights after a few optimizer steps of `scripts/train.py`'s run on the sample."""
    arguments = ["--data_dir", str(sample_dir), "--output_dir", str(output_dir), *SHORT_RUN, *flags]
    run_training(*parse_training_arguments(arguments)[:3])
    return load_file(output_dir / "model.safetensors")


@pytest.mark.parametrize(
    ("model", "flags"),
    [
        ("mlp", ["--linear_bigram_buckets", "4096"]),
        ("tfidf", []),
        ("lstm", ["--lstm_hidden_size", "16"]),
        ("cnn", ["--num_filters", "8", "--linear_bigram_buckets", "4096"]),
        ("lstm", ["--lstm_hidden_size", "16", "--linear_bigram_buckets", "4096"]),
    ],
)
def test_sparse_and_dense_training_give_the_same_first_step_update(model, flags, sample_dir, tmp_path):
    runs = {
        sparse: train_steps(
            sample_dir, tmp_path / sparse, "--model", model, "--max_steps", "1", "--sparse_embeddings", sparse, *flags
        )
        for sparse in ("true", "false")
    }
    assert runs["true"].keys() == runs["false"].keys()
    for name, weights in runs["false"].items():
        torch.testing.assert_close(runs["true"][name], weights, rtol=1e-5, atol=1e-6, msg=name)


def test_sparse_training_moves_only_the_rows_its_batches_hold(sample_dir, tmp_path):
    config = MeliMLPConfig(vocab_size=50, embedding_dim=4, hidden_layers=[8], num_labels=3, dropout=0.0)
    model = MeliMLPForSequenceClassification(config)
    set_sparse_gradients(model, True)
    optimizer = LazyAdamW(model.parameters(), lr=0.1, weight_decay=0.01)
    before = model.embeddings.weight.detach().clone()
    input_ids = torch.tensor([[3, 4, 5], [5, 6, 0]])
    for _ in range(3):
        model(input_ids, labels=torch.tensor([0, 2])).loss.backward()
        assert model.embeddings.weight.grad.is_sparse
        optimizer.step()
        optimizer.zero_grad()
    moved = (model.embeddings.weight != before).any(dim=1).nonzero().flatten().tolist()
    assert moved == [3, 4, 5, 6]  # the padding row 0 and every unread word stay where they were


def test_rows_batches_skip_catch_up_as_dense_adamw_moves_them():
    """Dense AdamW keeps moving a row that batches no longer hold (its moments decay); the sparse run applies those
    steps when the row is read again, or at `catch_up`."""
    torch.manual_seed(0)
    tables = [nn.Embedding(6, 3, sparse=sparse) for sparse in (True, False)]
    tables[1].load_state_dict(tables[0].state_dict())
    settings = {"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": 0.05}
    optimizers = [LazyAdamW(tables[0].parameters(), **settings), torch.optim.AdamW(tables[1].parameters(), **settings)]
    target = torch.randn(6, 3)

    def steps(count, rows):
        for _ in range(count):
            for table, optimizer in zip(tables, optimizers):
                (table(rows) - target[rows]).pow(2).sum().backward()
                optimizer.step()
                optimizer.zero_grad()

    steps(300, torch.arange(6))  # every row, until the bias corrections have settled
    before = [table.weight.detach().clone() for table in tables]
    steps(40, torch.tensor([4, 5]))  # rows 0-3 skipped
    assert torch.equal(tables[0].weight[:4], before[0][:4])  # the sparse run has not moved them yet
    optimizers[0].catch_up()
    sparse_move, dense_move = (table.weight[:4] - start[:4] for table, start in zip(tables, before))
    assert dense_move.abs().mean() > 1e-3  # dense AdamW did move them
    torch.testing.assert_close(sparse_move, dense_move, rtol=0.05, atol=1e-5)
    torch.testing.assert_close(tables[0].weight, tables[1].weight, rtol=0.01, atol=1e-4)


def test_lazy_adamw_is_adamw_on_dense_gradients():
    torch.manual_seed(0)
    layers = [nn.Linear(5, 3) for _ in range(2)]
    layers[1].load_state_dict(layers[0].state_dict())
    optimizers = [
        torch.optim.AdamW(layers[0].parameters(), lr=0.01, weight_decay=0.1),
        LazyAdamW(layers[1].parameters(), lr=0.01, weight_decay=0.1),
    ]
    inputs = torch.randn(7, 5)
    for _ in range(4):
        for layer, optimizer in zip(layers, optimizers):
            layer(inputs).pow(2).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    for one, other in zip(layers[0].parameters(), layers[1].parameters()):
        assert torch.equal(one, other)
    assert optimizers[1].state_dict()["state"].keys() == optimizers[0].state_dict()["state"].keys()


def test_gradient_clipping_reads_sparse_gradients_with_repeated_rows():
    rows = torch.tensor([[1, 3, 1]])  # row 1 twice: uncoalesced, its values add up
    values = torch.tensor([[3.0, 0.0], [0.0, 4.0], [1.0, 2.0]])
    sparse, dense = nn.Parameter(torch.zeros(5, 2)), nn.Parameter(torch.zeros(5, 2))
    sparse.grad = torch.sparse_coo_tensor(rows, values, (5, 2))
    dense.grad = sparse.grad.to_dense()
    bias, bias_copy = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    bias.grad, bias_copy.grad = torch.tensor([2.0, -1.0]), torch.tensor([2.0, -1.0])

    norm = clip_gradient_norm_([sparse, bias], max_norm=1.0)
    expected = torch.nn.utils.clip_grad_norm_([dense, bias_copy], max_norm=1.0)
    torch.testing.assert_close(norm, expected)
    torch.testing.assert_close(sparse.grad.to_dense(), dense.grad)
    torch.testing.assert_close(bias.grad, bias_copy.grad)


def test_only_the_baselines_embedding_tables_become_sparse(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification

    config = MeliMLPConfig(vocab_size=50, embedding_dim=4, bigram_buckets=16, num_labels=3)
    assert len(embedding_tables(MeliMLPForSequenceClassification(config))) == 2  # words and bigrams
    frozen = MeliMLPConfig(vocab_size=50, embedding_dim=4, num_labels=3, freeze_embeddings=True)
    assert embedding_tables(MeliMLPForSequenceClassification(frozen)) == []
    bert = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3)
    assert embedding_tables(bert) == []


def test_sparse_embeddings_default_follows_what_the_run_allows(tmp_path, caplog):
    from meli_hf.training.trainer import MeliTrainer

    def trainer(*flags):
        args = parse_training_arguments(["--output_dir", str(tmp_path), *SHORT_RUN, *flags])[2]
        config = MeliMLPConfig(vocab_size=50, embedding_dim=4, num_labels=3)
        return MeliTrainer(model=MeliMLPForSequenceClassification(config), args=args)

    default = trainer()
    assert isinstance(default.create_optimizer(), LazyAdamW) and default.model.embeddings.sparse
    other = trainer("--optim", "adafactor")
    with caplog.at_level(logging.INFO, logger="meli_hf"):
        assert not isinstance(other.create_optimizer(), LazyAdamW) and not other.model.embeddings.sparse
    assert "dense embedding gradients: --optim adafactor cannot update sparse gradients" in caplog.text
    off = trainer("--sparse_embeddings", "false")
    assert type(off.create_optimizer()) is torch.optim.AdamW and not off.model.embeddings.sparse

    with pytest.raises(MeliError, match="^--sparse_embeddings: --optim adafactor cannot update sparse gradients"):
        parse_training_arguments(["--sparse_embeddings", "true", "--optim", "adafactor"])


def test_explicit_sparse_embeddings_are_refused_for_beto(sample_dir, tiny_bert_dir, tmp_path):
    arguments = ["--model", "beto", "--model_name_or_path", str(tiny_bert_dir), "--data_dir", str(sample_dir)]
    arguments += ["--output_dir", str(tmp_path), "--sparse_embeddings", "true", "--max_steps", "1", *SHORT_RUN]
    with pytest.raises(MeliError, match="^--sparse_embeddings: BertForSequenceClassification has no embedding"):
        run_training(*parse_training_arguments(arguments)[:3])


@pytest.mark.parametrize("distilled", [False, True])
def test_two_processes_with_sparse_gradients_train_as_one(distilled, sample_dir, teacher_dir, tmp_path):
    """gloo sums the sparse gradients of both halves of every batch: two steps of two processes with 128 titles
    each give the weights of one process with 256, with a teacher's targets in the loss too."""
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    common = ["--model", "mlp", "--data_dir", str(sample_dir), "--max_steps", "2", "--use_cpu", *SHORT_RUN]
    common += ["--teacher", str(teacher_dir), "--distill_alpha", "0.7"] if distilled else []
    train_script = str(ROOT / "scripts" / "train.py")
    one = [sys.executable, train_script, *common, "--output_dir", str(tmp_path / "one")]
    two = [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", train_script, *common]
    two += ["--output_dir", str(tmp_path / "two"), "--per_device_train_batch_size", "128"]
    for command in (one, two):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "sparse embedding gradients: 2 tables" in result.stdout + result.stderr  # word vectors, linear part
    weights = {run: load_file(tmp_path / run / "model.safetensors") for run in ("one", "two")}
    for name, tensor in weights["one"].items():
        torch.testing.assert_close(weights["two"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
