import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from meli_hf.data.loading import MeliDataError
from meli_hf.errors import MeliError
from meli_hf.inference.predictor import Predictor
from meli_hf.inference.records import read_records
from meli_hf.training.parsing import parse_training_arguments
from meli_hf.training.run import run_training

from ..conftest import WITHOUT_MELI_HF, train_checkpoint

ROOT = Path(__file__).resolve().parents[2]
PREDICT = [sys.executable, str(ROOT / "scripts" / "predict.py")]


@pytest.fixture(scope="module")
def checkpoints(sample_dir, tiny_bert_dir, tmp_path_factory):
    """One small trained checkpoint per architecture family: word models, the TF-IDF model and the BERT path."""
    folders = {}
    bert = ["--model_name_or_path", str(tiny_bert_dir)]
    for model, extra in (("mlp", []), ("lstm", []), ("tfidf", []), ("beto", bert)):
        folders[model] = train_checkpoint(sample_dir, tmp_path_factory.mktemp(model), model, 2, *extra)
    return folders


CARD_USAGE_WITHOUT_MELI_HF = """
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], trust_remote_code=True)
classifier = pipeline("text-classification", model=model, tokenizer=tokenizer)
print(classifier(sys.argv[2], top_k=1)[0]["label"])
"""


@pytest.mark.parametrize("model", ["mlp", "tfidf"])
def test_a_checkpoint_loads_silently_without_meli_hf_as_its_card_says(model, checkpoints, tmp_path):
    """Without meli_hf, tokenizer and model load with `trust_remote_code=True`: no prompt and no warning (progress
    bars, transformers' own, are turned off here)."""
    title = "Zapatillas Nike Air Talle 42"
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_MELI_HF + CARD_USAGE_WITHOUT_MELI_HF, str(checkpoints[model]), title],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=os.environ
        | {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""
    assert result.stdout.strip() == Predictor([str(checkpoints[model])]).predict([title])[0][0]["label"]
    card = (checkpoints[model] / "README.md").read_text()
    assert "trust_remote_code=True" in card


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
    """The same model with its output columns (and id2label) in reverse order, categories renamed by `rename`: the
    classifier's rows and, where there is one, the linear part's columns."""
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    order = list(reversed(range(model.config.num_labels)))
    output_layer = [module for module in model.classifier.modules() if isinstance(module, torch.nn.Linear)][-1]
    with torch.no_grad():
        output_layer.weight.copy_(output_layer.weight[order])
        output_layer.bias.copy_(output_layer.bias[order])
        if model.linear_ngrams is not None:  # the linear part's table: a column per category
            table = model.linear_ngrams.weight.weight
            table.copy_(table[:, order])
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


def test_output_is_replaced_only_by_a_complete_run(checkpoints, tmp_path):
    model = str(checkpoints["mlp"])
    titles = tmp_path / "titles.csv"
    titles.write_text("title,category\nHeladera Gafa,REFRIGERATORS\n")
    result = run_predict("--model", model, "--input", str(titles), "--output", str(titles))
    assert result.returncode == 2 and "is --input" in result.stderr
    assert titles.read_text() == "title,category\nHeladera Gafa,REFRIGERATORS\n"
    link = tmp_path / "link.csv"
    link.symlink_to(titles)
    assert "is --input" in run_predict("--model", model, "--input", str(titles), "--output", str(link)).stderr

    kept = tmp_path / "kept.jsonl"
    kept.write_text("precious\n")
    result = run_predict("--model", model, "--input", str(tmp_path / "missing.csv"), "--output", str(kept))
    assert result.returncode == 2 and "missing.csv: file not found" in result.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Heladera Gafa\nTel\xe9fono\n")
    result = run_predict("--model", model, "--input", str(bad), "--output", str(kept))
    assert result.returncode == 2 and "bad.txt, line 2: not valid UTF-8" in result.stderr
    assert "kept.jsonl was not written" in result.stderr
    assert kept.read_text() == "precious\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.txt",
        "kept.jsonl",
        "link.csv",
        "titles.csv",
    ]

    result = run_predict("--model", model, "--input", str(titles), "--output", str(tmp_path / "new" / "out.jsonl"))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "new" / "out.jsonl").read_text())["predictions"][0]["label"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch_size", "0"], "argument --batch_size: 0: must be at least 1"),
        (["--top_k", "-1"], "argument --top_k: -1: must be at least 1"),
        (["--max_length", "0"], "argument --max_length: 0: must be at least 1"),
        (["--unknown_flag"], "unrecognized arguments: --unknown_flag"),
    ],
)
def test_nonsense_flags_are_one_line_errors(checkpoints, flags, message):
    result = run_predict("--model", str(checkpoints["mlp"]), "Heladera", *flags)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"error: {message} (see --help)"]


def test_errors_are_one_line_and_debug_shows_the_traceback(checkpoints, tmp_path):
    source = tmp_path / "titles.jsonl"
    source.write_text('{"title": "Heladera Gafa"}\n{"title": 42}\n')
    result = run_predict("--model", str(checkpoints["mlp"]), "--input", str(source))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {source}, line 2, field 'title': expected a string, got int"
    )
    assert len(result.stdout.splitlines()) == 1  # the line before the bad one was answered
    debug = run_predict("--model", str(checkpoints["mlp"]), "--input", str(source), "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_unknown_categories_count_as_errors_of_their_own(checkpoints, sample_dir, tmp_path):
    from sklearn.metrics import balanced_accuracy_score

    model = str(checkpoints["mlp"])
    predictor = Predictor(model)
    with gzip.open(sample_dir / "spanish.test.jsonl.gz", "rt") as fh:
        records = [json.loads(line) for line in fh][:200]
    # Half the rows belong to categories the model never saw; one known category carries a trailing space.
    for i, record in enumerate(records):
        if i % 2:
            record["category"] = f"UNSEEN_{i % 10}"
    records[0]["category"] += " "
    source = tmp_path / "test.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = run_predict("--model", model, "--input", str(source), "--evaluate", "--output", os.devnull)
    assert result.returncode == 0, result.stderr

    predicted = [p[0]["label"] for p in predictor.predict([r["title"] for r in records])]
    expected = balanced_accuracy_score([r["category"].strip() for r in records], predicted)
    known_rows = [(r["category"].strip(), p) for r, p in zip(records, predicted) if "UNSEEN" not in r["category"]]
    known_categories = len({category for category, _ in known_rows})
    # Each unknown category enters the mean as a class of recall 0 beside the known ones.
    known = balanced_accuracy_score(*zip(*known_rows))
    assert expected == pytest.approx(known * known_categories / (known_categories + 5))
    assert f"balanced_accuracy={expected:.4f}" in result.stderr
    assert "100 of 200 rows belong to 5 categories the model does not know (e.g. UNSEEN_1, UNSEEN_3" in result.stderr


def test_serving_truncates_titles_at_the_training_length(sample_dir, tmp_path):
    flags = ["--model", "mlp", "--data_dir", str(sample_dir), "--output_dir", str(tmp_path), "--max_seq_length", "3"]
    flags += ["--num_train_epochs", "1", "--save_strategy", "no", "--load_best_model_at_end", "false"]
    run_training(*parse_training_arguments(flags)[:3])
    assert AutoTokenizer.from_pretrained(tmp_path).model_max_length == 3
    short, long = "Heladera Gafa Inverter", "Heladera Gafa Inverter Zapatillas Nike Running Talle Hombre"
    served = Predictor(tmp_path).predict([short, long], top_k=5)
    assert served[0] == served[1]  # words past the third are not read, as in training
    assert Predictor(tmp_path, max_length=64).predict(long, top_k=5) != served[1]


def test_predictor_input_types(checkpoints):
    predictor = Predictor(checkpoints["mlp"])
    one = predictor.predict("Heladera Gafa No Frost", top_k=2)
    assert [p["label"] for p in one] == [p["label"] for p in predictor.predict(["Heladera Gafa No Frost"], top_k=2)[0]]
    generated = predictor.predict((title for title in TITLES), top_k=1)
    assert generated == predictor.predict(TITLES, top_k=1)
    with pytest.raises(TypeError, match="title 1 is a int, not a string"):
        predictor.predict(["Heladera", 42])
    with pytest.raises(MeliError, match="top_k 0: must be at least 1"):
        predictor.predict(TITLES, top_k=0)
    with pytest.raises(MeliError, match="batch_size 0: must be at least 1"):
        Predictor(checkpoints["mlp"], batch_size=0)


def test_an_unreachable_hub_id_is_one_line_after_one_check(tmp_path, monkeypatch):
    import huggingface_hub.utils._http

    from meli_hf.hub import load_pretrained

    def no_retries(*args, **kwargs):
        raise AssertionError("retried the Hub")

    monkeypatch.setattr(huggingface_hub.utils._http, "http_backoff", no_retries)
    with pytest.raises(MeliError, match=r"cannot load 'someone/meli-beto' \(--model\): .*HF_HUB_OFFLINE is set.*"):
        Predictor("someone/meli-beto")
    # Without offline mode and without a Hub to reach (a closed port here): one failed request, then the same line.
    monkeypatch.setattr(huggingface_hub.constants, "is_offline_mode", lambda: False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(
        MeliError,
        match=r"'dccuchile/bert-base-spanish-wwm-cased' \(--model_name_or_path\): it is no "
        r"local folder.*cannot be reached.*--local-dir DIR",
    ):
        load_pretrained(
            AutoTokenizer.from_pretrained,
            "dccuchile/bert-base-spanish-wwm-cased",
            "--model_name_or_path",
            trust_remote_code=False,
        )


def test_unusable_checkpoints_and_devices_are_one_line_errors(checkpoints, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(checkpoints["mlp"], broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    result = run_predict("--model", str(broken), "Heladera")
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(
        f"error: cannot load {broken} (--model): Error while deserializing header"
    )
    result = run_predict("--model", str(tmp_path / "typo"), "Heladera")
    assert (
        result.stderr.strip().splitlines()[-1] == f"error: cannot load {tmp_path / 'typo'} (--model): no such folder"
    )
    result = run_predict("--model", str(checkpoints["mlp"]), "Heladera", "--device", "gpu")
    assert result.returncode == 2 and "error: device 'gpu' is not available here" in result.stderr


def test_evaluation_report_matches_evaluate(checkpoints, sample_dir, tmp_path):
    test_file = sample_dir / "spanish.test.jsonl.gz"
    models = ["--model", str(checkpoints["mlp"]), "--model", str(checkpoints["tfidf"])]  # an ensemble
    report = tmp_path / "report"
    result = run_predict(*models, "--input", str(test_file), "--report", str(report), "--output", os.devnull)
    assert result.returncode == 0, result.stderr
    balanced = float(result.stderr.split("balanced_accuracy=")[1].split()[0])
    assert sorted(p.name for p in report.iterdir()) == [
        "confusion_heatmap.png",
        "confusions.csv",
        "per_category.csv",
        "per_group.csv",
        "recall_vs_support.png",
        "reliability.png",
        "report.md",
    ]
    for picture in report.glob("*.png"):
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    categories = list(csv.DictReader((report / "per_category.csv").open()))
    recalls = [float(row["recall"]) for row in categories if int(row["support"])]
    assert len(recalls) == 30 and sum(recalls) / len(recalls) == pytest.approx(balanced, abs=5e-5)
    assert recalls == sorted(recalls)  # worst first
    assert sum(int(row["support"]) for row in categories) == sum(int(row["predicted"]) for row in categories) == 1000
    pairs = list(csv.DictReader((report / "confusions.csv").open()))
    errors = sum(int(row["support"]) - round(float(row["recall"]) * int(row["support"])) for row in categories)
    assert sum(int(row["count"]) for row in pairs) == errors and all(row["example_1"] for row in pairs)
    text = (report / "report.md").read_text()
    assert f"balanced accuracy **{balanced:.4f}**" in text and "![reliability diagram](reliability.png)" in text
    assert "expected calibration error" in text and text.count("\n| ") >= 2 * min(20, len(pairs))
    groups = {row["group"] for row in csv.DictReader((report / "per_group.csv").open())}
    assert "AUDIO" in groups and "CELLPHONES" in groups  # the first word of each name

    shelves = tmp_path / "groups.csv"
    shelves.write_text("category,group\nCELLPHONES,ELECTRONICS\nNOTEBOOKS,ELECTRONICS\nTELEVISIONS,ELECTRONICS\n")
    grouped = tmp_path / "grouped"
    flags = ["--input", str(test_file), "--report", str(grouped), "--group_by", str(shelves), "--output", os.devnull]
    assert run_predict("--model", str(checkpoints["mlp"]), *flags).returncode == 0
    electronics = next(r for r in csv.DictReader((grouped / "per_group.csv").open()) if r["group"] == "ELECTRONICS")
    assert electronics["categories"] == "3" and float(electronics["same_group"]) >= float(electronics["accuracy"])


def test_report_counts_unknown_categories_and_refuses_bad_flags(checkpoints, tmp_path):
    source = tmp_path / "titles.csv"
    source.write_text("title,category\nHeladera Gafa No Frost,REFRIGERATORS\nTaladro Percutor Bosch,POWER_TOOLS\n")
    report = tmp_path / "report"
    result = run_predict("--model", str(checkpoints["mlp"]), "--input", str(source), "--report", str(report))
    assert result.returncode == 0, result.stderr
    unknown = next(r for r in csv.DictReader((report / "per_category.csv").open()) if r["category"] == "POWER_TOOLS")
    assert (unknown["recall"], unknown["support"]) == ("0.0", "1")
    assert "1 rows of 1 categories the model does not know" in (report / "report.md").read_text()
    result = run_predict("--model", str(checkpoints["mlp"]), "--input", str(source), "--group_by", str(source))
    assert result.stderr.strip().splitlines() == ["error: --group_by goes with --report DIR (see --help)"]

    # A second report replaces the first whole; a folder of other files is never replaced.
    earlier = (report / "report.md").read_text()
    source.write_text("title,category\nHeladera Gafa No Frost,REFRIGERATORS\n")
    assert (
        run_predict("--model", str(checkpoints["mlp"]), "--input", str(source), "--report", str(report)).returncode
        == 0
    )
    assert (report / "report.md").read_text() != earlier and "POWER_TOOLS" not in (
        report / "per_category.csv"
    ).read_text()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    result = run_predict("--model", str(checkpoints["mlp"]), "--input", str(source), "--report", str(other))
    assert result.returncode == 2 and "holds other files than an evaluation report" in result.stderr
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    # Nor is a folder that holds what the command reads.
    result = run_predict("--model", str(checkpoints["mlp"]), "--input", str(source), "--report", str(tmp_path))
    assert result.returncode == 2 and f"holds --input {source}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "report", "titles.csv"]


def test_a_checkpoint_without_a_trained_head_is_refused(checkpoints, minilm_dir, tmp_path):
    """An encoder without a classification head (the MiniLM folder), a checkpoint missing weights, and one whose
    classes were never named would all predict noise with exit 0: each is refused in one line."""
    result = run_predict("--model", str(minilm_dir), "Heladera Gafa")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {minilm_dir} (--model) lacks trained weights for classifier.bias, classifier.weight: loading would "
        "initialise them at random (a pretrained encoder without a trained classification head?); give a checkpoint "
        "trained by scripts/train.py"
    ]

    from safetensors.torch import load_file, save_file

    cut = tmp_path / "cut"
    shutil.copytree(checkpoints["mlp"], cut)
    weights = load_file(cut / "model.safetensors")
    del weights["classifier.out_proj.weight"]
    save_file(weights, cut / "model.safetensors", metadata={"format": "pt"})
    result = run_predict("--model", str(cut), "Heladera Gafa")
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(
        f"error: {cut} (--model) lacks trained weights for classifier.out_proj.weight: "
    )

    unnamed = tmp_path / "unnamed"
    shutil.copytree(checkpoints["lstm"], unnamed)
    config = json.loads((unnamed / "config.json").read_text())
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(len(config["id2label"]))}
    config["label2id"] = {f"LABEL_{i}": i for i in range(len(config["id2label"]))}
    (unnamed / "config.json").write_text(json.dumps(config))
    for args in (["Heladera Gafa"], ["--model", str(checkpoints["lstm"]), "Heladera Gafa"]):  # alone, in an ensemble
        result = run_predict("--model", str(unnamed), *args)
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [
            f"error: {unnamed} (--model) names its classes LABEL_0, LABEL_1, ..., not categories: its head was not "
            "trained on named categories; give a checkpoint trained by scripts/train.py"
        ]


def test_a_report_shows_category_names_as_written(checkpoints, tmp_path):
    """Names holding TeX, markdown or HTML (`$x^2$`, `_`, `<b>`) are drawn literally in the pictures and escaped
    in report.md: no matplotlib traceback, no math, bold or markup in the rendered report."""
    names = ["$x^2$", "CAMERAS_$5^", "<b>bold</b> & co", "a|b *c* [d](e)"]
    source = tmp_path / "titles.csv"
    with source.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["title", "category"])
        for k, name in enumerate(names * 3):
            writer.writerow([f"Heladera Gafa modelo {k}", name])
    report = tmp_path / "report"
    result = run_predict("--model", str(checkpoints["mlp"]), "--input", str(source), "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (report / "confusion_heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = {row["category"] for row in csv.DictReader((report / "per_category.csv").open())}
    assert set(names) <= written  # the files keep the names as they are
    text = (report / "report.md").read_text()
    for escaped in (r"\$x\^2\$", r"CAMERAS\_\$5\^", "&lt;b&gt;bold&lt;/b&gt; &amp; co", r"a\|b \*c\* \[d\](e)"):
        assert f"| {escaped} |" in text
    assert "<b>" not in text and "$x^2$" not in text


HEAVY_MODULES = ("datasets", "evaluate", "matplotlib", "sklearn", "pandas")


def imported_modules(*args: str) -> set[str]:
    """The modules a Python process imports (`-X importtime` lists each on stderr)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("model", ["mlp", "beto"])
def test_predicting_imports_no_data_scoring_or_plotting_library(checkpoints, model):
    modules = imported_modules(*PREDICT[1:], "--model", str(checkpoints[model]), "Heladera Gafa")
    # (scipy comes with transformers' own modeling code: its object-detection losses import it.)
    assert not {m for m in modules if m.split(".")[0] in HEAVY_MODULES}
    assert "meli_hf.evaluation.scoring" not in modules and "meli_hf.evaluation.report" not in modules


@pytest.mark.parametrize(
    "config_class, settings",
    [
        ("MeliLSTMConfig", {"linear_combination": "sum", "lstm_pooling": "last"}),
        ("MeliLSTMConfig", {"linear_combination": "mixture", "lstm_pooling": "max"}),
        ("MeliMLPConfig", {"linear_combination": "mixture", "bigram_buckets": 32}),
    ],
)
def test_checkpoints_saved_with_settings_no_longer_offered_still_predict(config_class, settings, tmp_path):
    """`--linear_combination sum|mixture`, `--lstm_pooling last` and the MLP's `--bigram_buckets` are gone from
    train.py (measured no better); checkpoints saved with them load and predict as before."""
    import meli_hf
    from meli_hf.data.tokenization import word_tokenizer_from_vocabulary

    vocabulary = {"[PAD]": 0, "[UNK]": 1, "heladera": 2, "gafa": 3, "zapatillas": 4, "nike": 5}
    tokenizer = word_tokenizer_from_vocabulary(vocabulary)
    config = getattr(meli_hf, config_class)(
        vocab_size=len(vocabulary),
        embedding_dim=8,
        hidden_layers=[8],
        linear_bigram_buckets=16,
        id2label={0: "REFRIGERATORS", 1: "SNEAKERS"},
        label2id={"REFRIGERATORS": 0, "SNEAKERS": 1},
        **settings,
    )
    AutoModelForSequenceClassification.from_config(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    result = run_predict("--model", str(tmp_path), "Heladera Gafa", "--top_k", "2")
    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout)["predictions"]
    assert {p["label"] for p in prediction} == {"REFRIGERATORS", "SNEAKERS"}
    assert json.loads((tmp_path / "config.json").read_text())["linear_combination"] == settings["linear_combination"]
