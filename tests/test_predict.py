import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, HfArgumentParser, pipeline

from meli_hf.data import MeliDataError
from meli_hf.predict import Predictor, read_records
from meli_hf.training import DataTrainingArguments, MeliTrainingArguments, ModelArguments, run_training

ROOT = Path(__file__).resolve().parents[1]
PREDICT = [sys.executable, str(ROOT / "scripts" / "predict.py")]


@pytest.fixture(scope="module")
def checkpoints(sample_dir, tiny_bert_dir, tmp_path_factory):
    """One small trained checkpoint per architecture family: word models, the TF-IDF model and the BERT path."""
    folders = {}
    bert = ["--model_name_or_path", str(tiny_bert_dir)]
    for model, extra in (("mlp", []), ("lstm", []), ("tfidf", []), ("beto", bert)):
        folder = tmp_path_factory.mktemp(model)
        parser = HfArgumentParser((ModelArguments, DataTrainingArguments, MeliTrainingArguments))
        run_training(
            *parser.parse_args_into_dataclasses(
                [
                    "--model",
                    model,
                    "--data_dir",
                    str(sample_dir),
                    "--output_dir",
                    str(folder),
                    "--num_train_epochs",
                    "2",
                    "--disable_tqdm",
                    "true",
                    "--save_strategy",
                    "no",
                    "--load_best_model_at_end",
                    "false",
                    *extra,
                ]
            )
        )
        folders[model] = folder
    return folders


def run_predict(*args, stdin=None):
    return subprocess.run(
        [*PREDICT, *args], input=stdin, capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"}
    )


@pytest.mark.parametrize("model", ["mlp", "lstm", "tfidf", "beto"])
def test_predictor_top_k(checkpoints, model):
    predictor = Predictor(checkpoints[model], batch_size=2)
    results = predictor.predict(["Zapatillas Nike Air Talle 42", "", "Heladera Gafa No Frost", "  "], top_k=3)
    assert [len(r) for r in results] == [3, 0, 3, 0]
    for result in results[::2]:
        scores = [p["score"] for p in result]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
        assert all(p["label"] in predictor.labels for p in result)
    assert len(predictor.labels) == 30


@pytest.mark.parametrize("model", ["mlp", "tfidf", "beto"])
def test_predictor_matches_the_transformers_pipeline(checkpoints, model):
    titles = ["Zapatillas Nike Air Talle 42", "Heladera Gafa No Frost", "Notebook Lenovo 15 pulgadas"]
    classifier = pipeline("text-classification", model=str(checkpoints[model]), device="cpu")
    expected = classifier(titles, top_k=2)
    predicted = Predictor(checkpoints[model], batch_size=2).predict(titles, top_k=2)
    for ours, theirs in zip(predicted, expected):
        assert [p["label"] for p in ours] == [p["label"] for p in theirs]
        assert [p["score"] for p in ours] == pytest.approx([p["score"] for p in theirs], abs=1e-5)


TITLES = ["Zapatillas Nike Air Talle 42", "Heladera Gafa No Frost", "Notebook Lenovo 15 pulgadas"]


def full_distributions(predictor: Predictor, titles: list[str]) -> list[dict[str, float]]:
    return [{p["label"]: p["score"] for p in result} for result in predictor.predict(titles, top_k=10_000)]


def reordered_copy(folder: Path, destination: Path, rename: dict[str, str] | None = None) -> Path:
    """The same model with its output columns (and id2label) in reverse order, categories renamed by `rename`."""
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    order = list(reversed(range(model.config.num_labels)))
    output_layer = [module for module in model.classifier.modules() if isinstance(module, torch.nn.Linear)][-1]
    with torch.no_grad():
        output_layer.weight.copy_(output_layer.weight[order])
        output_layer.bias.copy_(output_layer.bias[order])
    labels = [(rename or {}).get(model.config.id2label[i], model.config.id2label[i]) for i in order]
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    model.save_pretrained(destination)
    AutoTokenizer.from_pretrained(folder).save_pretrained(destination)
    return destination


def test_ensemble_averages_the_probabilities_of_its_checkpoints(checkpoints):
    members = ("mlp", "tfidf", "beto")
    ensemble = full_distributions(Predictor([checkpoints[member] for member in members]), TITLES)
    alone = [full_distributions(Predictor(checkpoints[member]), TITLES) for member in members]
    for title, together in enumerate(ensemble):
        expected = {label: sum(member[title][label] for member in alone) / 3 for label in together}
        assert together == pytest.approx(expected, abs=1e-6)


def test_ensemble_matches_categories_by_name(checkpoints, tmp_path):
    reordered = reordered_copy(checkpoints["mlp"], tmp_path / "reordered")
    assert Predictor(reordered).labels != Predictor(checkpoints["mlp"]).labels
    alone = full_distributions(Predictor(checkpoints["mlp"]), TITLES)
    with_its_copy = full_distributions(Predictor([checkpoints["mlp"], reordered]), TITLES)
    for ours, expected in zip(with_its_copy, alone):
        assert ours == pytest.approx(expected, abs=1e-6)

    label = Predictor(checkpoints["mlp"]).labels[0]
    renamed = reordered_copy(checkpoints["mlp"], tmp_path / "renamed", rename={label: "MADE_UP"})
    expected = rf"renamed was trained on other categories than .*mlp.*: 1 missing \(e.g. \['{label}'\]\), 1 extra"
    with pytest.raises(ValueError, match=expected):
        Predictor([checkpoints["mlp"], renamed])


def test_model_given_several_times_predicts_with_the_ensemble(checkpoints):
    mlp, lstm = str(checkpoints["mlp"]), str(checkpoints["lstm"])
    result = run_predict("--model", mlp, "--model", lstm, *TITLES, "--top_k", "3")
    assert result.returncode == 0, result.stderr
    predicted = [json.loads(line)["predictions"] for line in result.stdout.splitlines()]
    scores = [p["score"] for title in predicted for p in title]
    ensemble = Predictor([mlp, lstm]).predict(TITLES, top_k=3)
    assert [[p["label"] for p in title] for title in predicted] == [[p["label"] for p in t] for t in ensemble]
    assert scores == pytest.approx([p["score"] for title in ensemble for p in title], abs=1e-6)
    assert scores != pytest.approx([p["score"] for t in Predictor(mlp).predict(TITLES, top_k=3) for p in t])


def test_titles_as_arguments_give_json_lines_in_order(checkpoints):
    result = run_predict(
        "--model", str(checkpoints["mlp"]), "Heladera Gafa No Frost", "", "Notebook Lenovo", "--top_k", "2"
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["title"] for line in lines] == ["Heladera Gafa No Frost", "", "Notebook Lenovo"]
    assert [len(line["predictions"]) for line in lines] == [2, 0, 2]
    assert lines[1]["error"] == "empty title" and "line 2: empty title" in result.stderr


def test_csv_in_csv_out_carries_columns(checkpoints, tmp_path):
    source = tmp_path / "titles.csv"
    source.write_text('id,title,seller\n7,"Notebook Lenovo, 15 pulgadas",ana\n8,Heladera Gafa,luis\n')
    result = run_predict(
        "--model",
        str(checkpoints["lstm"]),
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.csv"),
        "--top_k",
        "2",
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    assert [(r["id"], r["seller"]) for r in rows] == [("7", "ana"), ("8", "luis")]
    assert {"label_1", "score_1", "label_2", "score_2"} <= set(rows[0]) and float(rows[0]["score_1"]) > 0


def test_standard_input_and_evaluate(checkpoints, sample_dir):
    with gzip.open(sample_dir / "spanish.test.jsonl.gz", "rt") as fh:
        records = [json.loads(line) for line in fh]
    titles = "\n".join(r["title"] for r in records[:5]) + "\n"
    result = run_predict("--model", str(checkpoints["beto"]), "--input", "-", stdin=titles)
    assert len(result.stdout.splitlines()) == 5, result.stderr
    evaluated = run_predict(
        "--model",
        str(checkpoints["mlp"]),
        "--input",
        str(sample_dir / "spanish.test.jsonl.gz"),
        "--evaluate",
        "--output",
        os.devnull,
    )
    expected = json.loads((checkpoints["mlp"] / "all_results.json").read_text())["test_balanced_accuracy"]
    assert f"balanced_accuracy={expected:.4f}" in evaluated.stderr  # same figure as the Trainer's test evaluation


def test_bad_input_is_reported(checkpoints, tmp_path):
    model = str(checkpoints["mlp"])
    assert "not a checkpoint folder" in run_predict("--model", str(tmp_path), "x").stderr
    (tmp_path / "empty.csv").write_text("")
    assert "empty.csv: empty file" in run_predict("--model", model, "--input", str(tmp_path / "empty.csv")).stderr
    (tmp_path / "bad.txt").write_bytes(b"Heladera Gafa\nTel\xe9fono\n")
    result = run_predict("--model", model, "--input", str(tmp_path / "bad.txt"))
    assert "bad.txt, line 2: not valid UTF-8" in result.stderr and result.returncode != 0
    assert json.loads(result.stdout.splitlines()[0])["title"] == "Heladera Gafa"  # what came before is written
    (tmp_path / "cols.csv").write_text("name,price\nHeladera,10\n")
    assert (
        "field 'title': unknown column; the header has name, price"
        in run_predict("--model", model, "--input", str(tmp_path / "cols.csv")).stderr
    )
    assert (
        "missing.txt: file not found" in run_predict("--model", model, "--input", str(tmp_path / "missing.txt")).stderr
    )


def test_records_are_read_lazily(tmp_path):
    path = tmp_path / "titles.jsonl"
    path.write_text('{"title": "Heladera"}\n' * 3 + "not json\n")
    records = read_records(str(path), None, "title")
    assert [next(records)[0] for _ in range(3)] == [1, 2, 3]  # nothing read past what was asked for yet
    with pytest.raises(MeliDataError, match="titles.jsonl, line 4: malformed JSON"):
        next(records)
