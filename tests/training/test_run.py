import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from meli_hf.data.loading import load_meli
from meli_hf.errors import MeliError
from meli_hf.markdown import markdown_text
from meli_hf.training.arguments import DataTrainingArguments, MeliTrainingArguments
from meli_hf.training.builders import build_word_tokenizer
from meli_hf.training.parsing import parse_training_arguments
from meli_hf.training.registry import has_word_embeddings
from meli_hf.training.run import run_training
from meli_hf.training.trainer import ClassBalancedLoss

ROOT = Path(__file__).resolve().parents[2]
CHANCE = 1 / 30  # the sample has 30 categories
TITLES = ["Zapatillas Nike Air Max Talle 42 Hombre", "Notebook Lenovo Core I5 8gb Ram", "Heladera Gafa No Frost"]


def train(*flags: str) -> dict:
    return run_training(
        *parse_training_arguments(
            ["--num_train_epochs", "3", "--save_total_limit", "1", "--disable_tqdm", "true", *flags]
        )[:3]
    )


@pytest.mark.parametrize(
    ("model", "flags", "named"),
    [
        ("mlp", ["--linear_bigram_buckets", "1000000000"], "--linear_bigram_buckets 1000000000"),
        ("lstm", ["--linear_bigram_buckets", "100000000"], "--linear_bigram_buckets 100000000"),
        ("cnn", ["--embedding_dim", "10000000"], "--embedding_dim 10000000"),
        (
            "tfidf",
            ["--bigram_buckets", "10000000000", "--min_document_frequency", "2"],
            "--bigram_buckets 10000000000",
        ),
    ],
)
def test_a_model_larger_than_memory_is_refused_before_it_is_allocated(model, flags, named, sample_dir, tmp_path):
    output_dir = tmp_path / "out"
    with pytest.raises(MeliError, match=f"with .*{named}, .* the model needs [0-9.]+ GiB to train .* more than this"):
        train("--model", model, "--data_dir", str(sample_dir), "--output_dir", str(output_dir), *flags)
    assert not output_dir.exists()


def resolved_training_args(model: str, *flags: str) -> MeliTrainingArguments:
    """Training arguments as `scripts/train.py --model MODEL FLAGS` parses them."""
    return parse_training_arguments(["--model", model, *flags])[2]


@pytest.mark.parametrize("model", ["mlp", "cnn", "lstm", "tfidf"])
def test_baseline_trains_saves_and_predicts(model, sample_dir, tmp_path):
    word_vectors = ["--word_vectors", str(sample_dir / "word_vectors.txt.gz")] if has_word_embeddings(model) else []
    metrics = train("--model", model, "--data_dir", str(sample_dir), "--output_dir", str(tmp_path), *word_vectors)
    assert metrics["test_balanced_accuracy"] > 0.6 > 10 * CHANCE
    assert metrics["eval_balanced_accuracy"] > 0.6
    saved = json.loads((tmp_path / "all_results.json").read_text())
    assert saved["test_balanced_accuracy"] == metrics["test_balanced_accuracy"]
    assert {"eval_accuracy", "eval_macro_f1", "test_accuracy", "test_macro_f1", "train_loss"} <= set(saved)
    assert (saved["train_samples"], saved["eval_samples"], saved["test_samples"]) == (2000, 500, 1000)
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["best_metric"] == max(e["eval_balanced_accuracy"] for e in state["log_history"] if "eval_loss" in e)
    assert (tmp_path / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (tmp_path / "README.md").read_text()
    assert f"{metrics['test_balanced_accuracy']:.4f}" in card and "30 categories" in card and "pipeline(" in card

    model_loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    batch = tokenizer(TITLES, padding=True, return_tensors="pt")
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        logits = model_loaded(**batch).logits
        torch.testing.assert_close(logits, again(**batch).logits)
    if model == "tfidf":  # idf fitted to the training titles (1 is the value of a feature every title holds)
        assert model_loaded.idf.gt(1.0).all()
        assert "| bigram_buckets | 262144 |" in card and "| min_document_frequency | 5 |" in card
        # Only features held by 5 training titles or more have weight rows.
        kept = model_loaded.config.num_features
        assert 0 < kept < len(model_loaded.feature_rows) and model_loaded.classifier.weight.shape[0] == kept
    predictions = pipeline("text-classification", model=str(tmp_path))(TITLES)
    assert [p["label"] for p in predictions] == [model_loaded.config.id2label[i] for i in logits.argmax(-1).tolist()]
    assert predictions[0]["score"] == pytest.approx(logits.softmax(-1).max(-1).values[0].item(), abs=1e-5)


def test_beto_code_path_with_a_tiny_bert(sample_dir, tiny_bert_dir, tmp_path):
    metrics = train(
        "--model",
        "beto",
        "--model_name_or_path",
        str(tiny_bert_dir),
        "--data_dir",
        str(sample_dir),
        "--output_dir",
        str(tmp_path),
        "--learning_rate",
        "1e-3",
        "--num_train_epochs",
        "5",
        "--max_seq_length",
        "16",
    )
    assert metrics["test_balanced_accuracy"] > 6 * CHANCE  # a random 2-layer BERT, trained from scratch
    assert AutoTokenizer.from_pretrained(tmp_path).tokenize("zapatillas nike") == ["zapatillas", "nike"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "bert" and len(config["id2label"]) == 30
    assert pipeline("text-classification", model=str(tmp_path))(TITLES[0])[0]["label"] in config["label2id"]


def test_lstm_batches_titles_of_similar_length_by_default(sample_dir, tmp_path, monkeypatch):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from meli_hf.data.collator import WordIdBatches
    from meli_hf.data.loading import load_meli
    from meli_hf.training.builders import MODEL_CLASSES
    from meli_hf.training.trainer import MeliTrainer

    for model, strategy in (("mlp", "random"), ("lstm", "group_by_length")):
        args = resolved_training_args(model, "--output_dir", str(tmp_path))
        assert args.train_sampling_strategy == strategy
    train = WordIdBatches(load_meli(sample_dir, max_rows={"train": 512}, seed=0)["train"])
    config_class, model_class = MODEL_CLASSES["lstm"]
    config = config_class(vocab_size=600, embedding_dim=8, hidden_layers=[8], lstm_hidden_size=8)
    trainer = MeliTrainer(model=model_class(config), args=args, train_dataset=train, eval_dataset=train)
    expected = [len(train[i]["input_ids"]) for i in range(len(train))]
    # The Trainer's own path reads every row; at the course's size that is minutes before the first step.
    monkeypatch.setattr(WordIdBatches, "__getitem__", lambda self, index: pytest.fail("lengths read row by row"))
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler) and sampler.lengths == expected


def test_memory_is_pinned_only_where_an_accelerator_is(tmp_path, monkeypatch):
    for available in (False, True):
        monkeypatch.setattr(torch.accelerator, "is_available", lambda available=available: available)
        assert resolved_training_args("mlp", "--output_dir", str(tmp_path)).dataloader_pin_memory is available
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    args = resolved_training_args("mlp", "--output_dir", str(tmp_path), "--dataloader_pin_memory", "true")
    assert args.dataloader_pin_memory is True


def test_half_precision_checkpoint_is_fine_tuned_in_float32(sample_dir, tiny_bert_dir, tmp_path):
    # Transformers 5 loads a checkpoint in its stored dtype; optimizer steps on float16 weights would be lost.
    from meli_hf.training.builders import build_model

    half = tmp_path / "half"
    AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, dtype=torch.float16).save_pretrained(half)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = build_model("beto", tokenizer, {0: "A", 1: "B"}, {}, model_name_or_path=str(half))
    assert {parameter.dtype for parameter in model.parameters()} == {torch.float32}


@pytest.mark.slow
def test_beto_code_path_with_real_pretrained_minilm(sample_dir, minilm_dir, tmp_path):
    metrics = train(
        "--model",
        "beto",
        "--model_name_or_path",
        str(minilm_dir),
        "--data_dir",
        str(sample_dir),
        "--output_dir",
        str(tmp_path),
        "--max_train_samples",
        "800",
        "--max_eval_samples",
        "200",
        "--max_test_samples",
        "300",
        "--num_train_epochs",
        "2",
        "--learning_rate",
        "2e-4",
        "--max_seq_length",
        "24",
    )
    assert metrics["test_balanced_accuracy"] > 0.5


def test_challenge_csv_trains_its_own_vocabulary(sample_dir, tmp_path):
    data = tmp_path / "csv"
    data.mkdir()
    for split in ("train", "validation"):
        with (
            gzip.open(sample_dir / f"spanish.{split}.jsonl.gz", "rt") as fh,
            gzip.open(data / f"{split}.csv.gz", "wt") as out,
        ):
            out.write("title,category,language\n")
            for record in map(json.loads, fh):
                out.write(f"{record['title']},{record['category']},spanish\n")
    metrics = train("--model", "mlp", "--data_dir", str(data), "--output_dir", str(tmp_path / "out"))
    assert metrics["eval_balanced_accuracy"] > 0.6 and "test_balanced_accuracy" not in metrics
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert tokenizer("zapatillas")["input_ids"][0] > 1
    # CSV titles keep their numbers and words with digits unless --keep_numbers false, the course's rule.
    assert tokenizer.tokenize("Celular 64gb") == ["celular", "64gb"] and tokenizer("64gb")["input_ids"][0] > 1
    words_only = build_word_tokenizer(
        load_meli(data), data, language=None, keep_numbers=False, max_vocabulary_words=50_000, min_word_frequency=2
    )
    assert words_only.tokenize("Celular 64gb") == ["celular"]


def test_class_balanced_loss_gives_every_class_the_same_total_weight():
    counts = torch.tensor([90, 9, 1, 0])
    settings = SimpleNamespace(class_balance=1.0, label_smoothing_factor=0.0, distill_linear_part=True)
    loss = ClassBalancedLoss(counts, settings)
    totals = loss.weights * counts
    torch.testing.assert_close(totals[:3], totals[:1].expand(3))
    assert totals[3] == 0 and (totals.sum() / counts.sum()).item() == pytest.approx(1.0)

    logits, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 0])
    per_row = loss.weights[labels] * torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(loss({"logits": logits}, labels, num_items_in_batch=10), per_row.sum() / 10)
    torch.testing.assert_close(loss({"logits": logits}, labels), per_row.mean())

    # A search trial sets the power and the smoothing on the Trainer's arguments: the loss follows them.
    settings.class_balance, settings.label_smoothing_factor = 0.0, 0.1
    torch.testing.assert_close(loss.weights, torch.ones(4))
    expected = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    torch.testing.assert_close(loss({"logits": logits}, labels), expected)

    # A model whose prediction mixes parts trains each part on its own loss, not the mixture's logits.
    other = torch.randn(5, 4)
    mixture = {"logits": torch.zeros(5, 4), "part_logits": (logits, other)}
    other_loss = torch.nn.functional.cross_entropy(other, labels, label_smoothing=0.1)
    torch.testing.assert_close(loss(mixture, labels), expected + other_loss)


def test_class_balance_flag_trains_with_the_weighted_loss(sample_dir, tmp_path, monkeypatch):
    losses_seen = []
    weighted_loss = ClassBalancedLoss.__call__
    monkeypatch.setattr(
        ClassBalancedLoss,
        "__call__",
        lambda self, *a, **k: losses_seen.append(self) or weighted_loss(self, *a, **k),
    )
    metrics = train(
        "--model", "mlp", "--data_dir", str(sample_dir), "--output_dir", str(tmp_path), "--class_balance", "1"
    )
    assert losses_seen and losses_seen[0].weights.shape == (30,) and metrics["test_balanced_accuracy"] > 0.6
    assert losses_seen[0].args.label_smoothing_factor == 0.1  # the MLP's default


def test_label_smoothing_defaults_per_model_and_the_flag_wins(tmp_path):
    for model, factor in (("mlp", 0.1), ("cnn", 0.1), ("lstm", 0.1), ("tfidf", 0.0), ("beto", 0.0)):
        assert resolved_training_args(model, "--output_dir", str(tmp_path)).label_smoothing_factor == factor
    args = resolved_training_args("mlp", "--output_dir", str(tmp_path), "--label_smoothing_factor", "0")
    assert args.label_smoothing_factor == 0.0


def test_a_bare_yes_no_flag_means_true_also_where_the_default_depends_on_the_run(tmp_path):
    output = ["--output_dir", str(tmp_path)]
    _, data_args, training_args, _ = parse_training_arguments([*output, "--keep_numbers", "--sparse_embeddings"])
    assert data_args.keep_numbers is True and training_args.sparse_embeddings is True
    _, data_args, training_args, _ = parse_training_arguments(output)
    assert data_args.keep_numbers is None and training_args.sparse_embeddings is None
    _, data_args, _, _ = parse_training_arguments([*output, "--keep_numbers", "false"])
    assert data_args.keep_numbers is False


def test_resume_from_checkpoint_finishes_the_run(sample_dir, tmp_path):
    common = ["--model", "mlp", "--data_dir", str(sample_dir), "--save_total_limit", "3", "--seed", "7"]
    full = train(*common, "--output_dir", str(tmp_path / "full"))
    interrupted = tmp_path / "interrupted"
    train(*common, "--output_dir", str(interrupted))
    checkpoints = sorted(interrupted.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    for later in checkpoints[1:]:  # the state of a run stopped right after its first checkpoint
        subprocess.run(["rm", "-r", str(later)], check=True)
    resumed = train(*common, "--output_dir", str(interrupted), "--resume_from_checkpoint", str(checkpoints[0]))
    state = json.loads((interrupted / "trainer_state.json").read_text())
    full_state = json.loads((tmp_path / "full" / "trainer_state.json").read_text())
    assert state["global_step"] == full_state["global_step"]
    evaluated_epochs = [e["epoch"] for e in state["log_history"] if "eval_loss" in e]
    assert evaluated_epochs == [e["epoch"] for e in full_state["log_history"] if "eval_loss" in e] == [1, 2, 3, 3]
    assert resumed["test_balanced_accuracy"] == pytest.approx(full["test_balanced_accuracy"], abs=0.02)


def test_early_stopping_ends_the_run_when_balanced_accuracy_stalls(sample_dir, tmp_path):
    train(
        "--model",
        "mlp",
        "--data_dir",
        str(sample_dir),
        "--output_dir",
        str(tmp_path),
        "--num_train_epochs",
        "40",
        "--early_stopping_patience",
        "2",
    )
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    scores = [e["eval_balanced_accuracy"] for e in state["log_history"] if "eval_loss" in e][:-1]  # last: final eval
    assert len(scores) < 40
    assert max(scores[-2:]) <= max(scores[:-2])  # stopped after two evaluations without improvement


def test_bad_flags_fail_before_training(sample_dir, tmp_path):
    with pytest.raises(ValueError, match="--model 'bert' is unknown; choose one of mlp, cnn, lstm, tfidf, beto"):
        train("--model", "bert")
    with pytest.raises(ValueError, match="--data_dir .*absent: folder not found"):
        train("--data_dir", str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="--word_vectors .*: file not found"):
        train("--word_vectors", str(tmp_path / "vectors.txt"))
    with pytest.raises(ValueError, match="--bigram_buckets -1: must be 0 \\(off\\) or a bucket count"):
        train("--model", "tfidf", "--bigram_buckets", "-1")
    with pytest.raises(ValueError, match="--word_vectors: --model tfidf has no word embeddings"):
        train("--model", "tfidf", "--word_vectors", str(sample_dir / "word_vectors.txt.gz"))
    with pytest.raises(
        ValueError, match="--min_document_frequency: --model cnn has no such part; it applies to tfidf"
    ):
        train("--model", "cnn", "--min_document_frequency", "2")
    with pytest.raises(ValueError, match="--bigram_buckets: --model mlp has no such part; it applies to tfidf"):
        train("--model", "mlp", "--bigram_buckets", "1000")
    with pytest.raises(
        ValueError, match="--linear_bigram_buckets: --model tfidf has no such part; it applies to mlp, c"
    ):
        train("--model", "tfidf", "--linear_bigram_buckets", "1000")
    with pytest.raises(ValueError, match="--linear_bigram_buckets -1: must be 0 \\(off\\) or a bucket count"):
        train("--model", "lstm", "--linear_bigram_buckets", "-1")
    for scale in ("0", "nan", "inf"):
        with pytest.raises(ValueError, match=f"--linear_logit_scale {float(scale)}: must be a finite number above 0"):
            train("--model", "lstm", "--linear_logit_scale", scale)
    with pytest.raises(ValueError, match="--linear_logit_scale applies to a linear part: add --linear_bigram_buckets"):
        train("--model", "lstm", "--linear_bigram_buckets", "0", "--linear_logit_scale", "5")
    with pytest.raises(ValueError, match="--min_document_frequency 0: must be at least 1"):
        train("--model", "tfidf", "--min_document_frequency", "0")
    with pytest.raises(ValueError, match="--min_document_frequency 2001: no feature is held by that many of the 2000"):
        train(
            "--model",
            "tfidf",
            "--data_dir",
            str(sample_dir),
            "--output_dir",
            str(tmp_path / "tfidf"),
            "--min_document_frequency",
            "2001",
        )
    assert not (tmp_path / "tfidf").exists()
    with pytest.raises(ValueError, match="--keep_numbers: .* holds course files"):
        train("--model", "tfidf", "--data_dir", str(sample_dir), "--keep_numbers", "true")
    lstm = tmp_path / "lstm"
    lstm.mkdir()
    (lstm / "config.json").write_text(json.dumps({"model_type": "meli-lstm"}))
    with pytest.raises(ValueError, match="holds a 'meli-lstm' model, not --model mlp"):
        train("--model", "mlp", "--data_dir", str(sample_dir), "--resume_from_checkpoint", str(lstm))
    with pytest.raises(ValueError, match="holds a 'meli-lstm' model, not --model beto"):
        train("--model", "beto", "--data_dir", str(sample_dir), "--resume_from_checkpoint", str(lstm))


def test_failed_push_keeps_the_local_checkpoint(sample_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_invalid")
    expected = r"saved in .*pushing it to the Hub as 'someone/meli-mlp' failed: the Hub could not be reached"
    with pytest.raises(MeliError, match=expected):
        train(
            "--model",
            "mlp",
            "--data_dir",
            str(sample_dir),
            "--output_dir",
            str(tmp_path),
            "--num_train_epochs",
            "1",
            "--push_to_hub",
            "--hub_model_id",
            "someone/meli-mlp",
        )
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "all_results.json"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert AutoModelForSequenceClassification.from_pretrained(tmp_path).config.model_type == "meli-mlp"


def test_mlflow_tracking_with_a_local_store(sample_dir, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "meli-hf-test")
    train(
        "--model",
        "mlp",
        "--data_dir",
        str(sample_dir),
        "--output_dir",
        str(tmp_path / "out"),
        "--report_to",
        "mlflow",
        "--num_train_epochs",
        "2",
    )
    runs = mlflow.search_runs(experiment_names=["meli-hf-test"])
    assert len(runs) == 1
    assert 0.6 < runs.iloc[0]["metrics.eval_balanced_accuracy"] <= 1
    assert 0.6 < runs.iloc[0]["metrics.test_balanced_accuracy"] <= 1  # final evaluations land in the same run


def test_tensorboard_event_files(sample_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(
        "--model",
        "mlp",
        "--data_dir",
        str(sample_dir),
        "--output_dir",
        str(tmp_path),
        "--report_to",
        "tensorboard",
        "--num_train_epochs",
        "2",
    )
    (events,) = {p.parent for p in (tmp_path / "runs").rglob("events.out.tfevents.*")}
    accumulator = EventAccumulator(str(events)).Reload()
    assert len(accumulator.Scalars("eval/balanced_accuracy")) >= 2


def test_arguments_from_a_json_file(sample_dir, tmp_path):
    arguments = {
        "model": "cnn",
        "data_dir": str(sample_dir),
        "output_dir": str(tmp_path / "out"),
        "num_train_epochs": 1,
        "filter_widths": [2, 3],
        "num_filters": 16,
        "max_train_samples": 500,
    }
    (tmp_path / "run.json").write_text(json.dumps(arguments))
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), str(tmp_path / "run.json")],
        check=True,
        capture_output=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (config["model_type"], config["filter_widths"], config["num_filters"]) == ("meli-cnn", [2, 3], 16)


@pytest.mark.slow
def test_accelerate_launch_and_two_process_torchrun(sample_dir, tmp_path):
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    common = ["--model", "mlp", "--data_dir", str(sample_dir), "--num_train_epochs", "3"]
    common += ["--save_strategy", "no", "--load_best_model_at_end", "false"]  # both score their final weights
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [
            str(bin_dir / "accelerate"),
            "launch",
            "--config_file",
            str(ROOT / "accelerate_config.yaml"),
            str(ROOT / "scripts" / "train.py"),
            *common,
            "--output_dir",
            str(tmp_path / "one"),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    result = subprocess.run(
        [
            str(bin_dir / "torchrun"),
            "--nproc_per_node",
            "2",
            str(ROOT / "scripts" / "train.py"),
            *common,
            "--output_dir",
            str(tmp_path / "two"),
            "--use_cpu",
            "--per_device_train_batch_size",
            "128",  # two processes of 128: the single process's batch of 256, so the same optimizer steps
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 processes" in result.stdout + result.stderr
    one = json.loads((tmp_path / "one" / "all_results.json").read_text())
    two = json.loads((tmp_path / "two" / "all_results.json").read_text())
    steps = [json.loads((tmp_path / run / "trainer_state.json").read_text())["global_step"] for run in ("one", "two")]
    assert steps[1] == steps[0]  # each process saw half of every batch
    assert two["test_balanced_accuracy"] == pytest.approx(one["test_balanced_accuracy"], abs=0.05)
    # The mean loss is the same quantity in both runs (not scaled by the number of processes, which doubles it).
    assert two["test_loss"] == pytest.approx(one["test_loss"], rel=0.25)


def run_folder_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_holding_a_run_is_refused_and_replaced_only_once_the_new_run_is_complete(
    sample_dir, tmp_path, monkeypatch
):
    from meli_hf.training.trainer import MeliTrainer

    out = tmp_path / "run"
    common = ["--model", "mlp", "--data_dir", str(sample_dir), "--output_dir", str(out), "--num_train_epochs", "1"]
    train(*common, "--max_train_samples", "512")  # 2 steps: checkpoint-2
    earlier = run_folder_files(out)
    with pytest.raises(MeliError, match=r"--output_dir .*run holds an earlier run; pick another folder"):
        train(*common)
    assert run_folder_files(out) == earlier

    # A replacement that fails keeps the earlier run whole, set aside.
    monkeypatch.setattr(MeliTrainer, "train", lambda self, **kwargs: (_ for _ in ()).throw(RuntimeError("power cut")))
    with pytest.raises(RuntimeError, match="power cut"):
        train(*common, "--overwrite_output_dir", "true")
    assert run_folder_files(tmp_path / "run.previous") == earlier
    with pytest.raises(MeliError, match=r"run.previous still holds the run an unfinished earlier replacement"):
        train(*common, "--overwrite_output_dir", "true")
    monkeypatch.undo()

    (tmp_path / "run.previous").rename(tmp_path / "kept")
    train(*common, "--overwrite_output_dir", "true")  # 8 steps: checkpoint-8
    assert not (tmp_path / "run.previous").exists()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-8"]  # nothing of the earlier run
    assert json.loads((out / "all_results.json").read_text())["train_samples"] == 2000


def test_resume_takes_the_last_checkpoint_and_refuses_a_finished_run(sample_dir, tmp_path):
    out = tmp_path / "run"
    common = ["--model", "mlp", "--data_dir", str(sample_dir), "--output_dir", str(out), "--save_total_limit", "3"]
    train(*common, "--num_train_epochs", "2")
    results = (out / "all_results.json").read_bytes()
    for resume in ("true", str(out), str(out / "checkpoint-16")):
        with pytest.raises(MeliError, match=r"checkpoint-16 is at step 16, the end of this run: nothing is left"):
            train(*common, "--num_train_epochs", "2", "--resume_from_checkpoint", resume)
    assert (out / "all_results.json").read_bytes() == results

    resumed = train(*common, "--num_train_epochs", "3", "--resume_from_checkpoint", str(out))
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 24 and [e["epoch"] for e in state["log_history"] if "loss" in e] == [1, 2, 3]
    assert resumed["train_runtime"] > 0 and resumed["train_loss"] > 0
    with pytest.raises(MeliError, match=r"--resume_from_checkpoint true: .*empty not found"):
        train(*common[:4], "--output_dir", str(tmp_path / "empty"), "--resume_from_checkpoint", "true")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MeliError, match=r"--resume_from_checkpoint true: .*empty holds no checkpoint"):
        train(*common[:4], "--output_dir", str(tmp_path / "empty"), "--resume_from_checkpoint", "true")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda c: (c / "optimizer.pt").unlink(), r"has no optimizer state \(optimizer.pt; saved with --save_only_mo"),
        (lambda c: (c / "scheduler.pt").unlink(), r"has no scheduler state"),
        (lambda c: _truncate(c / "optimizer.pt"), r"has a cut-off or unreadable optimizer state"),
        (lambda c: _truncate(c / "model.safetensors"), r"has cut-off or unreadable weights \(model.safetensors\)"),
        (lambda c: _truncate(c / "trainer_state.json"), r"has a cut-off or unreadable trainer_state.json"),
        (lambda c: (c / "model.safetensors").unlink(), r"has no model weights"),
    ],
)
def test_an_incomplete_checkpoint_is_refused(sample_dir, tmp_path_factory, damage, message):
    finished = tmp_path_factory.getbasetemp() / "finished-run"
    common = ["--model", "mlp", "--data_dir", str(sample_dir), "--max_train_samples", "512"]
    if not finished.exists():
        train(*common, "--output_dir", str(finished), "--num_train_epochs", "1")
    run = tmp_path_factory.mktemp("damaged")
    checkpoint = run / "checkpoint-2"
    shutil.copytree(finished / "checkpoint-2", checkpoint)
    damage(checkpoint)
    with pytest.raises(MeliError, match=f"--resume_from_checkpoint {checkpoint} {message}"):
        train(*common, "--output_dir", str(run), "--num_train_epochs", "2", "--resume_from_checkpoint", "true")


def test_resume_keeps_the_checkpoint_tokenizer(sample_dir, tmp_path):
    data = tmp_path / "csv"
    data.mkdir()
    for split in ("train", "validation"):
        with (
            gzip.open(sample_dir / f"spanish.{split}.jsonl.gz", "rt") as fh,
            open(data / f"{split}.csv", "w", newline="") as out,
        ):
            writer = csv.writer(out)
            writer.writerow(["title", "category"])
            writer.writerows([r["title"], r["category"]] for r in map(json.loads, fh))
    run = tmp_path / "run"
    common = ["--model", "mlp", "--data_dir", str(data), "--output_dir", str(run), "--max_seq_length", "6"]
    train(*common, "--num_train_epochs", "1")
    vocabulary = AutoTokenizer.from_pretrained(run / "checkpoint-8").get_vocab()
    # Flags that would build another vocabulary and length: a resume keeps the checkpoint's.
    train(*common[:6], "--num_train_epochs", "2", "--min_word_frequency", "100", "--resume_from_checkpoint", "true")
    tokenizer = AutoTokenizer.from_pretrained(run)
    assert tokenizer.get_vocab() == vocabulary and tokenizer.model_max_length == 6


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num_train_epochs", "0"], "--num_train_epochs 0.0: must be above 0"),
        (["--learning_rate", "0"], "--learning_rate 0.0: must be above 0"),
        (["--learning_rate", "-0.1"], "--learning_rate -0.1: must be above 0"),
        (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size 0: must be at least 1"),
        (["--per_device_eval_batch_size", "-1"], "--per_device_eval_batch_size -1: must be at least 1"),
        (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps 0: must be at least 1"),
        (["--hidden_layers", "512", "0"], "--hidden_layers 512 0: sizes must be at least 1"),
        (["--embedding_dim", "0"], "--embedding_dim 0: must be at least 1"),
        (["--dropout", "1"], "--dropout 1.0: must be a probability from 0 up to"),
        (["--max_seq_length", "0"], "--max_seq_length 0: must be at least 1"),
        (["--max_train_samples", "0"], "--max_train_samples 0: must be at least 1"),
        (["--max_eval_samples", "-5"], "--max_eval_samples -5: must be at least 1"),
        (["--max_test_samples", "0"], "--max_test_samples 0: must be at least 1"),
        (["--filter_widths", "0", "3"], "--filter_widths 0 3: widths must be at least 1"),
        (["--num_filters", "0"], "--num_filters 0: must be at least 1"),
        (["--lstm_hidden_size", "0"], "--lstm_hidden_size 0: must be at least 1"),
        (["--lstm_num_layers", "0"], "--lstm_num_layers 0: must be at least 1"),
        (["--label_smoothing_factor", "1"], "--label_smoothing_factor 1.0: must be in \\[0, 1\\)"),
        (["--class_balance", "-1"], "--class_balance -1.0: must be 0 \\(off\\) or above"),
        (["--weight_decay", "-0.01"], "--weight_decay -0.01: must be 0 or above"),
        (["--save_total_limit", "0"], "--save_total_limit 0: must be at least 1"),
        (["--seed", "-1"], "--seed -1: must be in \\[0, 2\\*\\*32\\)"),
        (["--early_stopping_patience", "0"], "--early_stopping_patience 0: must be at least 1"),
        (["--min_word_frequency", "0"], "--min_word_frequency 0: must be at least 1"),
        (["--max_vocabulary_words", "0"], "--max_vocabulary_words 0: must be at least 1"),
        (["--report_to", "nonsense"], "--report_to nonsense: unknown; choose from azure_ml, comet_ml, mlflow"),
        (["--eval_strategy", "steps", "--eval_steps", "0"], "--eval_steps 0.0: must be above 0 with --eval_strategy"),
        (
            ["--save_strategy", "steps", "--save_steps", "-2"],
            "--save_steps -2.0: must be above 0 with --save_strategy",
        ),
    ],
)
def test_nonsense_settings_are_refused_before_any_work(flags, message, monkeypatch):
    import meli_hf.training.run

    monkeypatch.setattr(meli_hf.training.run, "load_meli", lambda *a, **k: pytest.fail("data loaded"))
    with pytest.raises(MeliError, match=f"^{message}"):
        train(*flags)


def test_a_longer_length_than_the_model_has_positions_is_refused(sample_dir, tiny_bert_dir, tmp_path):
    flags = ["--model", "beto", "--model_name_or_path", str(tiny_bert_dir), "--data_dir", str(sample_dir)]
    with pytest.raises(MeliError, match="--max_seq_length 65: the model has 64 positions"):
        train(*flags, "--output_dir", str(tmp_path), "--max_seq_length", "65")


def test_a_missing_validation_split_is_refused_unless_evaluation_is_off(sample_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sample_dir / "spanish.train.jsonl.gz", data)
    shutil.copy(sample_dir / "spanish_token_to_index.json.gz", data)
    flags = ["--model", "mlp", "--data_dir", str(data), "--num_train_epochs", "1"]
    with pytest.raises(
        MeliError, match=r"has no validation split .* --eval_strategy no --load_best_model_at_end false"
    ):
        train(*flags, "--output_dir", str(tmp_path / "a"))
    metrics = train(
        *flags, "--output_dir", str(tmp_path / "b"), "--eval_strategy", "no", "--load_best_model_at_end", "0"
    )
    assert metrics["train_samples"] == 2000 and "eval_balanced_accuracy" not in metrics


def test_course_word_ids_are_truncated_to_the_training_length(tmp_path):
    from datasets import Dataset, DatasetDict

    from meli_hf.training.run import truncate_word_ids

    rows = {"input_ids": [[2] * 10_000, [3, 4], []], "label": [0, 1, 0]}
    dataset = DatasetDict({"train": Dataset.from_dict(rows), "validation": Dataset.from_dict(rows)})
    args = resolved_training_args("mlp", "--output_dir", str(tmp_path))
    truncated = truncate_word_ids(dataset, 8, args)
    assert truncated["train"]["input_ids"] == [[2] * 8, [3, 4], []] == truncated["validation"]["input_ids"]
    assert truncated["train"]["label"] == [0, 1, 0]


def run_train_script(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *args],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        | {"HF_HUB_OFFLINE": "1"}
        | (env or {}),
        cwd=cwd,
    )


def test_train_script_errors_are_one_line(sample_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("title,category\nCelular,CELLPHONES\nNotebook\n")
    result = run_train_script("--data_dir", str(data), "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {data / 'train.csv'}, line 3: expected 2 fields (the header's), got 1"
    )
    debug = run_train_script(
        "--data_dir", str(data), "--output_dir", str(tmp_path / "out"), env={"MELI_HF_DEBUG": "1"}
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    for flags, message in (
        (["--num_train_epochs", "0"], "error: --num_train_epochs 0.0: must be above 0"),
        (
            ["--no_such_flag"],
            "error: Some specified arguments are not used by the HfArgumentParser: ['--no_such_flag']",
        ),
        (["--model", "bert"], "error: --model 'bert' is unknown; choose one of mlp, cnn, lstm, tfidf, beto."),
    ):
        result = run_train_script(*flags)
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [message], result.stderr
    (tmp_path / "run.json").write_text('{"model": "mlp", "epochs": 3}')
    result = run_train_script(str(tmp_path / "run.json"))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: Some keys are not used by the HfArgumentParser: ['epochs']"
    ]


def test_log_level_quiets_the_run(sample_dir, tmp_path):
    """As in transformers' examples: INFO by default on the main process, `--log_level` lowers it for every logger."""
    common = ["--data_dir", str(sample_dir), "--max_steps", "1", "--save_strategy", "no", "--eval_strategy", "no"]
    common += ["--load_best_model_at_end", "false", "--disable_tqdm", "true"]
    default = run_train_script(*common, "--output_dir", str(tmp_path / "default"))
    quiet = run_train_script(*common, "--output_dir", str(tmp_path / "quiet"), "--log_level", "warning")
    assert default.returncode == quiet.returncode == 0, default.stderr[-3000:] + quiet.stderr[-3000:]
    assert " INFO meli_hf.training.run: data " in default.stdout
    assert " INFO " not in quiet.stdout + quiet.stderr and "INFO|" not in quiet.stdout + quiet.stderr
    assert (tmp_path / "quiet" / "model.safetensors").exists()


def test_a_failed_push_names_its_cause():
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    from meli_hf.hub import push_failure_cause

    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    refused = HfHubHTTPError("401 Unauthorized", response=httpx2.Response(401, request=request))
    assert push_failure_cause(refused) == "credentials"
    try:
        try:
            raise httpx2.ConnectError("[Errno -2] Name or service not known", request=request)
        except httpx2.ConnectError as err:
            raise RuntimeError("upload failed") from err
    except RuntimeError as wrapped:
        assert push_failure_cause(wrapped) == "network"
    missing = HfHubHTTPError("404 Not Found", response=httpx2.Response(404, request=request))
    assert push_failure_cause(missing) == "other"


def test_resume_never_overwrites_later_checkpoints_or_another_run(sample_dir, tmp_path):
    out = tmp_path / "run"
    common = ["--model", "mlp", "--data_dir", str(sample_dir), "--save_total_limit", "3", "--num_train_epochs", "3"]
    train(*common, "--output_dir", str(out), "--max_train_samples", "512")
    later = run_folder_files(out / "checkpoint-6")
    with pytest.raises(MeliError, match=r"checkpoint-2: .*run holds later checkpoints \(checkpoint-4, checkpoint-6\)"):
        train(
            *common,
            "--output_dir",
            str(out),
            "--max_train_samples",
            "512",
            "--resume_from_checkpoint",
            str(out / "checkpoint-2"),
        )
    assert run_folder_files(out / "checkpoint-6") == later
    other = tmp_path / "other"
    train(*common, "--output_dir", str(other), "--max_train_samples", "256", "--num_train_epochs", "1")
    with pytest.raises(MeliError, match=r"--output_dir .*other holds an earlier run"):
        train(*common, "--output_dir", str(other), "--max_train_samples", "512", "--resume_from_checkpoint", str(out))


def test_the_default_beto_id_without_the_hub_is_one_line(sample_dir, tmp_path):
    with pytest.raises(
        MeliError,
        match=r"cannot load 'dccuchile/bert-base-spanish-wwm-cased' \(--model_name_or_path\): it is no local folder, "
        r"the Hugging Face cache does not hold it, and HF_HUB_OFFLINE is set\. .*pass --model_name_or_path DIR",
    ):
        train("--model", "beto", "--data_dir", str(sample_dir), "--output_dir", str(tmp_path))


def test_per_model_defaults_are_the_parser_defaults(tmp_path):
    from meli_hf.training.parsing import parse_training_file, training_argument_parser

    args = MeliTrainingArguments()  # built in Python: real values (the MLP's), no placeholders
    assert (args.output_dir, args.learning_rate, args.per_device_train_batch_size) == ("outputs/mlp", 2e-3, 256)
    cnn = resolved_training_args("cnn")
    assert (cnn.output_dir, cnn.learning_rate, cnn.num_train_epochs, cnn.label_smoothing_factor) == (
        "outputs/cnn",
        1e-3,
        4,
        0.1,
    )
    # The shape flags of each model's best measured settings are parser defaults too.
    lstm_model, _, lstm, _ = parse_training_arguments(["--model", "lstm", "--output_dir", str(tmp_path)])
    assert (lstm.num_train_epochs, lstm.label_smoothing_factor, lstm_model.linear_bigram_buckets) == (6, 0.1, 262144)
    assert (
        lstm_model.architecture()["linear_combination"] == "product"
        and lstm_model.architecture()["lstm_pooling"] == "max"
    )
    assert parse_training_arguments(["--model", "tfidf", "--output_dir", str(tmp_path)])[0].architecture() == {}
    assert resolved_training_args("cnn", "--learning_rate", "0.01").learning_rate == 0.01
    assert "(default: 0.1)" in " ".join(training_argument_parser("tfidf").format_help().split())
    (tmp_path / "run.yaml").write_text("model: beto\nnum_train_epochs: 1\n")
    _, _, from_file, _ = parse_training_file(tmp_path / "run.yaml")
    assert (from_file.learning_rate, from_file.num_train_epochs, from_file.output_dir) == (5e-5, 1, "outputs/beto")


def test_the_balanced_accuracy_module_is_loaded_once_per_run(sample_dir, tmp_path, monkeypatch):
    import evaluate

    loads = []
    load = evaluate.load
    monkeypatch.setattr(evaluate, "load", lambda *a, **k: loads.append(a) or load(*a, **k))
    train("--model", "mlp", "--data_dir", str(sample_dir), "--output_dir", str(tmp_path), "--max_train_samples", "300")
    assert len(loads) == 1  # three evaluations during training, then validation and test


def test_mlflow_runs_are_kept_in_the_output_folder_and_named_after_it(sample_dir, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    flags = ["--data_dir", str(sample_dir), "--output_dir", "runs/mlp-small", "--report_to", "mlflow"]
    result = run_train_script(*flags, "--num_train_epochs", "1", "--max_train_samples", "300", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # no mlflow.db or mlruns where the user stands
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs' / 'mlp-small' / 'mlflow.db'}")
    experiments = client.search_experiments()
    (run,) = client.search_runs([e.experiment_id for e in experiments])
    assert run.info.run_name == "mlp-small" and 0.5 < run.data.metrics["test_balanced_accuracy"] <= 1


class FakeHub:
    """`HfApi` at the upload calls: records what each push would send."""

    def __init__(self):
        self.uploads: list[tuple[str, dict[str, str]]] = []

    def create_repo(self, repo_id, **kwargs):
        from types import SimpleNamespace

        return SimpleNamespace(repo_id=repo_id)

    def upload_folder(self, *, repo_id, folder_path, path_in_repo=None, run_as_future=False, **kwargs):
        from concurrent.futures import Future

        folder = Path(folder_path)
        readme = folder / "README.md"
        self.uploads.append((path_in_repo or ".", {"README.md": readme.read_text() if readme.exists() else ""}))
        if run_as_future:
            done = Future()
            done.set_result(None)
            return done
        return f"https://huggingface.co/{repo_id}"


@pytest.mark.parametrize("strategy", ["end", "every_save", "checkpoint"])
def test_hub_strategy_is_honoured_and_the_card_carries_the_model_index(sample_dir, tmp_path, monkeypatch, strategy):
    import transformers.trainer
    import yaml

    hub = FakeHub()
    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: hub)
    flags = [
        "--model",
        "mlp",
        "--data_dir",
        str(sample_dir),
        "--output_dir",
        str(tmp_path / "run"),
        "--num_train_epochs",
        "2",
    ]
    metrics = train(*flags, "--push_to_hub", "--hub_model_id", "someone/meli-mlp", "--hub_strategy", strategy)
    # end: the final folder once, after the local save; the others: the Trainer also pushes at each of the two
    # saves (checkpoint: each also as last-checkpoint), and the final folder comes last.
    folders = [folder for folder, _ in hub.uploads]
    assert folders[-1] == "." and (len(folders) == 1) == (strategy == "end") and len(folders) != 2
    assert ("last-checkpoint" in folders) == (strategy == "checkpoint")
    card = hub.uploads[-1][1]["README.md"]
    metadata = yaml.safe_load(card.split("---")[1])
    (entry,) = metadata["model-index"]
    scores = {(r["dataset"]["split"], m["type"]): m["value"] for r in entry["results"] for m in r["metrics"]}
    assert scores[("test", "balanced_accuracy")] == round(metrics["test_balanced_accuracy"], 4)
    assert scores[("validation", "f1")] == round(metrics["eval_macro_f1"], 4)
    assert (
        metadata["language"] == "es" and metadata["library_name"] == "transformers" and "meli-hf" in metadata["tags"]
    )
    assert str(tmp_path) not in card and "github.com" not in card
    assert 'AutoTokenizer.from_pretrained("someone/meli-mlp")' in card


def test_a_beto_card_names_its_base_model_and_only_its_arguments(sample_dir, tiny_bert_dir, tmp_path):
    flags = ["--model", "beto", "--model_name_or_path", str(tiny_bert_dir), "--data_dir", str(sample_dir)]
    train(*flags, "--output_dir", str(tmp_path), "--num_train_epochs", "1", "--max_train_samples", "200")
    card = (tmp_path / "README.md").read_text()
    assert f"| model_name_or_path | {markdown_text(tiny_bert_dir.name)} |" in card and str(tiny_bert_dir) not in card
    for unused in ("dropout", "embedding_dim", "lstm_hidden_size", "filter_widths"):
        assert f"| {unused} |" not in card
    assert "base_model" not in card.split("---")[1]  # a local folder is no Hub base model


def test_a_new_classification_head_is_reported_in_one_line(tiny_bert_dir, capfd, caplog):
    import logging

    from meli_hf.training.builders import build_model

    with caplog.at_level(logging.INFO, logger="meli_hf"):
        build_model("beto", None, {0: "A", 1: "B"}, {}, model_name_or_path=str(tiny_bert_dir))
    assert "LOAD REPORT" not in capfd.readouterr().err
    assert "new classification head for 2 categories (classifier.bias, classifier.weight initialised)" in caplog.text


def test_every_flag_of_its_own_is_described_in_its_help():
    """Flags are described once, in `--help`: every flag meli-hf adds to train.py (transformers describes the
    TrainingArguments it inherits, and meli-hf's changed defaults keep a help of their own) says what it does."""
    import dataclasses

    from transformers import TrainingArguments

    from meli_hf.private_apis import parser_actions
    from meli_hf.training.arguments import HyperparameterSearchArguments, MeliTrainingArguments, ModelArguments
    from meli_hf.training.parsing import training_argument_parser

    inherited = {f.name for f in dataclasses.fields(TrainingArguments)}
    changed = {f.name for f in dataclasses.fields(MeliTrainingArguments) if f.name in vars(MeliTrainingArguments)}
    groups = (ModelArguments, DataTrainingArguments, HyperparameterSearchArguments, MeliTrainingArguments)
    flags = ({f.name for group in groups for f in dataclasses.fields(group)} - inherited) | changed
    assert "hp_retrain_best" in flags and "class_balance" in flags and "learning_rate" in flags
    helps = {action.dest: action.help or "" for action in parser_actions(training_argument_parser())}
    assert [flag for flag in sorted(flags) if len(helps[flag].split()) < 3] == []


def test_the_registry_names_fields_of_each_config():
    """The registry is plain data (parsing flags imports no model code): what it says each `--model` takes must be
    fields of that model's config, and its shape flags `ModelArguments` fields."""
    import dataclasses

    from meli_hf.training.arguments import ModelArguments
    from meli_hf.training.builders import MODEL_CLASSES
    from meli_hf.training.registry import MODELS

    flags = {f.name for f in dataclasses.fields(ModelArguments)}
    for model, (config_class, model_class) in MODEL_CLASSES.items():
        spec = MODELS[model]
        fields = {f.name for f in dataclasses.fields(config_class)}
        assert spec.architecture <= fields & flags and set(spec.fixed) <= fields, model
        assert set(spec.architecture_defaults) <= spec.architecture and spec.model_type == config_class.model_type
        assert model_class.config_class is config_class
    assert set(MODELS) - set(MODEL_CLASSES) == {"beto"}


def test_a_run_started_with_settings_no_longer_offered_resumes_with_them(sample_dir, tmp_path):
    """A run of the defaults before 2026-12-07 (no linear part; the LSTM's `last` pooling, now gone from train.py)
    resumes with today's code: its checkpoint's architecture and tokenizer, not today's defaults."""
    output = tmp_path / "old-defaults"
    common = ["--model", "lstm", "--data_dir", str(sample_dir), "--output_dir", str(output), "--seed", "7"]
    old = ["--word_vectors", "none", "--linear_bigram_buckets", "0", "--label_smoothing_factor", "0"]
    train(*common, *old, "--num_train_epochs", "2", "--lstm_hidden_size", "16", "--save_total_limit", "3")
    checkpoints = sorted(output.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    for later in checkpoints[1:]:  # stopped after its first epoch
        shutil.rmtree(later)
    config_file = checkpoints[0] / "config.json"
    config_file.write_text(json.dumps(json.loads(config_file.read_text()) | {"lstm_pooling": "last"}))
    resumed = train(*common, "--num_train_epochs", "2", "--resume_from_checkpoint", "true")
    config = json.loads((output / "config.json").read_text())
    assert config["lstm_pooling"] == "last" and config["linear_bigram_buckets"] == 0
    assert config["lstm_hidden_size"] == 16  # the checkpoint's shape, not today's default 512
    assert json.loads((output / "trainer_state.json").read_text())["global_step"] == 2 * int(
        checkpoints[0].name.split("-")[1]
    )
    assert resumed["test_balanced_accuracy"] > 0.2
