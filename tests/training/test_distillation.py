"""Distillation (`--teacher`): the soft-label loss, the cached teacher targets, and students of every kind trained
through the same Trainer."""

import json
import shutil

import pytest
import torch

import meli_hf.training.distillation
from meli_hf.errors import MeliError
from meli_hf.inference.predictor import Predictor
from meli_hf.training.distillation import distillation_divergence
from meli_hf.training.parsing import parse_training_arguments
from meli_hf.training.run import run_training

from ..training.test_optimization import SHORT_RUN, train_steps


def test_divergence_is_the_kl_of_the_tempered_distributions():
    torch.manual_seed(0)
    logits, teacher_logits = torch.randn(4, 6), torch.randn(4, 6)
    teacher_log_probs = teacher_logits.log_softmax(dim=-1)
    ids = torch.arange(6).expand(4, 6)  # every category kept: the plain KL
    for temperature in (1.0, 3.0):
        expected = torch.nn.functional.kl_div(
            (logits / temperature).log_softmax(dim=-1),
            (teacher_log_probs / temperature).log_softmax(dim=-1),
            log_target=True,
            reduction="none",
        ).sum(dim=-1)
        torch.testing.assert_close(distillation_divergence(logits, ids, teacher_log_probs, temperature), expected)
    # A student that predicts the teacher has nothing to learn from it, at any temperature.
    assert distillation_divergence(teacher_logits, ids, teacher_log_probs, 2.0).abs().max() < 1e-6
    # Top-k: the teacher renormalised over its k categories; the student's mass elsewhere still costs.
    top_ids = teacher_log_probs.topk(2).indices
    top = distillation_divergence(teacher_logits, top_ids, teacher_log_probs.gather(1, top_ids), 1.0)
    assert (top > 0).all()


def test_a_teacher_changes_training_and_alpha_zero_is_plain_training(sample_dir, teacher_dir, tmp_path):
    common = ["--model", "mlp", "--max_steps", "4", "--seed", "3"]
    plain = train_steps(sample_dir, tmp_path / "plain", *common)
    silent_teacher = train_steps(
        sample_dir, tmp_path / "alpha0", *common, "--teacher", str(teacher_dir), "--distill_alpha", "0"
    )
    taught = train_steps(sample_dir, tmp_path / "taught", *common, "--teacher", str(teacher_dir))
    for name, weights in plain.items():
        assert torch.equal(silent_teacher[name], weights), name
    assert not torch.equal(taught["classifier.out_proj.weight"], plain["classifier.out_proj.weight"])
    card = (tmp_path / "taught" / "README.md").read_text()
    assert f"Distilled from `{teacher_dir.name}`" in card and "| distill_alpha | 0.5 |" in card
    assert str(teacher_dir) not in card  # no local paths


@pytest.mark.parametrize(
    ("model", "flags"),
    [
        ("cnn", ["--num_filters", "8"]),
        ("lstm", ["--lstm_hidden_size", "16"]),
        ("lstm", ["--lstm_hidden_size", "16", "--linear_bigram_buckets", "256"]),
        ("tfidf", []),
        ("beto", []),
    ],
)
def test_every_student_kind_learns_from_a_teacher(model, flags, sample_dir, teacher_dir, tiny_bert_dir, tmp_path):
    if model == "beto":
        flags = ["--model_name_or_path", str(tiny_bert_dir), "--max_seq_length", "32"]
    common = ["--model", model, "--max_steps", "2", *flags]
    alpha = {
        a: train_steps(sample_dir, tmp_path / a, *common, "--teacher", str(teacher_dir), "--distill_alpha", a)
        for a in ("0", "1")
    }
    assert any(not torch.equal(alpha["0"][name], alpha["1"][name]) for name in alpha["0"])
    # The linear part, trained on its own loss, is taught too.
    linear_parts = [name for name in alpha["0"] if name.startswith("linear_ngrams.")]
    assert all(not torch.equal(alpha["0"][name], alpha["1"][name]) for name in linear_parts)


def test_a_student_with_parts_trained_apart_can_teach_its_network_alone(sample_dir, teacher_dir, tmp_path):
    # No clipping: the global gradient norm would tie the linear part's step to the network's gradients.
    common = ["--model", "lstm", "--max_steps", "3", "--lstm_hidden_size", "16", "--max_grad_norm", "0"]
    common += ["--linear_bigram_buckets", "256", "--teacher", str(teacher_dir)]
    labels_only = train_steps(sample_dir, tmp_path / "alpha0", *common, "--distill_alpha", "0")
    network_taught = train_steps(
        sample_dir, tmp_path / "network", *common, "--distill_alpha", "1", "--distill_linear_part", "false"
    )
    linear_parts = [name for name in labels_only if name.startswith("linear_ngrams.")]
    assert linear_parts
    for name, weights in labels_only.items():
        same = torch.equal(network_taught[name], weights)
        assert same if name in linear_parts else not same, name
    card = (tmp_path / "network" / "README.md").read_text()
    assert "its linear part learned from the labels alone" in card


def test_teacher_targets_are_computed_once(sample_dir, teacher_dir, tmp_path, monkeypatch):
    arguments = ["--model", "mlp", "--max_steps", "1", "--teacher", str(teacher_dir), "--distill_top_k", "3"]
    train_steps(sample_dir, tmp_path / "first", *arguments)

    def no_teacher_loading(*args, **kwargs):
        raise AssertionError("the teacher targets were computed again")

    monkeypatch.setattr(meli_hf.training.distillation, "Predictor", no_teacher_loading)
    train_steps(sample_dir, tmp_path / "second", *arguments)  # read back from the cache
    with pytest.raises(AssertionError, match="computed again"):  # another k: other targets
        train_steps(sample_dir, tmp_path / "third", *arguments[:-1], "5")


def test_teacher_targets_are_the_teachers_top_k(sample_dir, teacher_dir):
    from meli_hf.data.loading import load_meli

    train = load_meli(sample_dir, max_rows={"train": 50}, seed=0)["train"]
    targets = meli_hf.training.distillation.add_teacher_targets(train, [str(teacher_dir)], top_k=4)
    probabilities = Predictor(str(teacher_dir)).probabilities(train["title"])
    assert train.features["label"].names == Predictor(str(teacher_dir)).labels  # same order here
    expected = probabilities.topk(4, dim=-1)
    assert torch.equal(torch.tensor(targets["teacher_ids"]), expected.indices.int())
    torch.testing.assert_close(torch.tensor(targets["teacher_log_probs"]), expected.values.log())


def test_perturbed_copies_drop_words_and_keep_labels(sample_dir):
    from meli_hf.data.loading import load_meli

    train = load_meli(sample_dir, max_rows={"train": 300}, seed=0)["train"].select_columns(["title", "label"])
    first, second = meli_hf.training.distillation.perturbed_copies(train, 2, seed=1)
    original_titles = list(train["title"])
    for copy in (first, second):
        assert list(copy["label"]) == list(train["label"])
        for original, perturbed in zip(original_titles, copy["title"]):
            words = iter(original.split())
            assert perturbed and all(word in words for word in perturbed.split())  # an ordered subset of the words
        changed = sum(p != o for p, o in zip(copy["title"], original_titles)) / len(original_titles)
        assert 0.3 < changed < 0.95
    assert list(first["title"]) != list(second["title"])  # each copy is perturbed anew
    again = meli_hf.training.distillation.perturbed_copies(train, 1, seed=1)[0]
    assert list(again["title"]) == list(first["title"])
    assert list(meli_hf.training.distillation.perturbed_copies(train, 1, seed=2)[0]["title"]) != list(first["title"])


def test_perturbed_copies_are_taught_and_cached(sample_dir, teacher_dir, tmp_path, monkeypatch):
    arguments = ["--model", "mlp", "--max_steps", "1", "--teacher", str(teacher_dir), "--distill_augment", "1"]
    train_steps(sample_dir, tmp_path / "first", *arguments)
    assert json.loads((tmp_path / "first" / "all_results.json").read_text())["train_samples"] == 2 * 2000
    card = (tmp_path / "first" / "README.md").read_text()
    assert "and of 1 perturbed copy of each title" in card and "| distill_augment | 1 |" in card

    asked = []

    class CountingPredictor(Predictor):
        def probabilities(self, titles):
            asked.extend(titles)
            return super().probabilities(titles)

    monkeypatch.setattr(meli_hf.training.distillation, "Predictor", CountingPredictor)
    train_steps(sample_dir, tmp_path / "second", *arguments)
    assert asked == []  # the titles, their copy and the targets of both read back
    train_steps(sample_dir, tmp_path / "third", *arguments[:-1], "2")
    assert len(asked) == 2000  # only the second copy is new
    assert json.loads((tmp_path / "third" / "all_results.json").read_text())["train_samples"] == 3 * 2000
    assert "and of 2 perturbed copies of each title" in (tmp_path / "third" / "README.md").read_text()
    asked.clear()
    train_steps(sample_dir, tmp_path / "fourth", *arguments, "--seed", "7")
    assert len(asked) == 2000  # another seed: another copy; the original titles' targets are kept


def test_teachers_with_other_categories_are_refused(sample_dir, teacher_dir, tmp_path):
    other = tmp_path / "other-teacher"
    shutil.copytree(teacher_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["id2label"]["0"] = "SOMETHING_ELSE"
    config["label2id"] = {label: int(i) for i, label in config["id2label"].items()}
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(MeliError, match=r"trained without 1 of this data's categories \(e.g. AIR_CONDITIONERS\)"):
        train_steps(sample_dir, tmp_path / "out", "--model", "mlp", "--max_steps", "1", "--teacher", str(other))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--distill_alpha", "0.3"], "--distill_alpha applies to distillation: add --teacher CHECKPOINT"),
        (["--distill_temperature", "4"], "--distill_temperature applies to distillation"),
        (["--teacher", "TEACHER", "--distill_alpha", "1.5"], "--distill_alpha 1.5: must be from 0"),
        (["--teacher", "TEACHER", "--distill_temperature", "0"], "--distill_temperature 0.0: must be above 0"),
        (["--teacher", "TEACHER", "--distill_top_k", "0"], "--distill_top_k 0: must be at least 1"),
        (["--teacher", "TEACHER", "--distill_augment", "-1"], "--distill_augment -1: must be 0 (none) or more"),
        (["--distill_augment", "1"], "--distill_augment applies to distillation: add --teacher CHECKPOINT"),
        (["--teacher", "SAMPLE"], "neither a checkpoint folder (no config.json) nor an ensemble file"),
        (["--distill_linear_part", "false"], "--distill_linear_part applies to distillation: add --teacher"),
    ],
)
def test_distillation_settings_are_checked_before_any_work(flags, message, sample_dir, teacher_dir, tmp_path):
    flags = [{"TEACHER": str(teacher_dir), "SAMPLE": str(sample_dir)}.get(flag, flag) for flag in flags]
    with pytest.raises(MeliError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_training_arguments(["--output_dir", str(tmp_path), *SHORT_RUN, *flags])


def test_distilling_the_network_alone_needs_parts_trained_apart(sample_dir, teacher_dir, tmp_path, monkeypatch):
    def no_teacher_loading(*args, **kwargs):
        raise AssertionError("the teachers were asked before the student was checked")

    monkeypatch.setattr(meli_hf.training.distillation, "Predictor", no_teacher_loading)
    arguments = ["--model", "lstm", "--max_steps", "1", "--teacher", str(teacher_dir), "--linear_bigram_buckets", "0"]
    with pytest.raises(MeliError, match="--distill_linear_part false applies to a student whose linear part is"):
        train_steps(sample_dir, tmp_path / "out", *arguments, "--distill_linear_part", "false")
    assert not (tmp_path / "out").exists()


def test_a_missing_hub_teacher_fails_before_training(sample_dir, tmp_path):
    arguments = ["--data_dir", str(sample_dir), "--output_dir", str(tmp_path), *SHORT_RUN, "--max_steps", "1"]
    with pytest.raises(MeliError, match="someone/no-such-teacher"):
        run_training(*parse_training_arguments([*arguments, "--teacher", "someone/no-such-teacher"])[:3])
    assert not (tmp_path / "model.safetensors").exists()
