"""ONNX serving copies (meli_hf.inference.onnx_export, scripts/compact.py --format onnx) and the torch-free
`OnnxPredictor`: each graph against the PyTorch model it came from, copies against their checkpoints, and a
prediction process that never imports torch."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

import meli_hf
from meli_hf.errors import MeliError
from meli_hf.inference.compact import compact_checkpoint, weights_size
from meli_hf.inference.onnx_export import onnx_model
from meli_hf.inference.onnx_predictor import SERVING_CONFIG_FILE, OnnxPredictor
from meli_hf.inference.predictor import Predictor
from meli_hf.inference.records import read_records

from ..conftest import train_checkpoint

ROOT = Path(__file__).resolve().parents[2]
PREDICT = [sys.executable, str(ROOT / "scripts" / "predict.py")]
LABELS = {i: f"CATEGORY_{i}" for i in range(5)}
# Titles of 0 to 6 words (padding, one word, titles shorter than the widest filter, repeated words).
INPUT_IDS = torch.tensor(
    [[2, 3, 4, 5, 6, 7], [6, 0, 0, 0, 0, 0], [7, 8, 9, 0, 0, 0], [0, 0, 0, 0, 0, 0], [9, 9, 1, 2, 0, 0]]
)
WORD_MODELS = {"mlp": "MeliMLP", "cnn": "MeliCNN", "lstm": "MeliLSTM"}


def word_model(architecture: str, **settings):
    """A small model of `architecture` whose weights are drawn large enough that its probabilities are far from
    uniform: a graph that differs from the PyTorch model anywhere shows in them."""
    torch.manual_seed(0)
    stem = WORD_MODELS[architecture]
    config = getattr(meli_hf, f"{stem}Config")(
        vocab_size=40, embedding_dim=8, hidden_layers=[16], id2label=LABELS, **settings
    )
    model = getattr(meli_hf, f"{stem}ForSequenceClassification")(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    return model


def onnx_probabilities(model, input_ids: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(onnx_model(model).SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {"input_ids": input_ids.numpy(), "attention_mask": (input_ids != 0).long().numpy()}
    return session.run(None, feed)[0]


def torch_probabilities(model, input_ids: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=(input_ids != 0).long()).logits.softmax(-1).numpy()


@pytest.mark.parametrize(
    "architecture, settings",
    [
        *itertools.product(
            WORD_MODELS,
            [
                {},
                {"linear_bigram_buckets": 16, "linear_combination": "sum"},
                {"linear_bigram_buckets": 16, "linear_combination": "mixture"},
                {"linear_bigram_buckets": 16, "linear_combination": "product"},
            ],
        ),
        ("mlp", {"bigram_buckets": 32}),
        ("cnn", {"filter_widths": [1, 5]}),
        ("lstm", {"lstm_pooling": "max", "lstm_num_layers": 2}),
        ("lstm", {"lstm_pooling": "last", "lstm_num_layers": 2}),
        ("lstm", {"bidirectional": False, "lstm_pooling": "max"}),
        ("lstm", {"bidirectional": False, "lstm_pooling": "last"}),
    ],
)
@pytest.mark.parametrize("int8_tables", [False, True])
def test_each_graph_computes_what_its_pytorch_model_does(architecture, settings, int8_tables):
    model = word_model(architecture, **settings)
    if int8_tables:
        model = model.with_int8_tables()
    expected = torch_probabilities(model, INPUT_IDS)
    assert expected.max(axis=1).mean() > 0.35  # far from uniform (0.2)
    # (float32 sums in another order: a stacked LSTM with weights this large differs by up to 2e-5)
    np.testing.assert_allclose(onnx_probabilities(model, INPUT_IDS), expected, atol=1e-4)


def test_the_tfidf_graph_computes_what_its_pytorch_model_does():
    torch.manual_seed(0)
    config = meli_hf.MeliTfidfConfig(vocab_size=40, bigram_buckets=32, min_document_frequency=1, id2label=LABELS)
    model = meli_hf.MeliTfidfForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 3.0)
        model.idf.uniform_(1.0, 3.0)
        model.feature_rows[5] = -1  # a dropped feature
    expected = torch_probabilities(model, INPUT_IDS)
    np.testing.assert_allclose(onnx_probabilities(model, INPUT_IDS), expected, atol=1e-5)


def test_int8_tables_stay_int8_in_the_file():
    model = word_model("lstm", linear_bigram_buckets=16).with_int8_tables()
    tables = {t.name: t for t in onnx_model(model).graph.initializer}
    int8 = sorted(name.rsplit("_", 1)[0] for name, t in tables.items() if t.data_type == onnx_int8())
    assert int8 == ["embeddings_int8", "linear_weight_int8"]


def onnx_int8() -> int:
    from onnx import TensorProto

    return TensorProto.INT8


@pytest.fixture(scope="module")
def checkpoints(sample_dir, tmp_path_factory) -> dict[str, Path]:
    """Small trained checkpoints: each word architecture with and without its linear part, and the TF-IDF model."""
    small = ["--embedding_dim", "16", "--hidden_layers", "32", "--word_vectors", "none"]
    shapes = {"mlp": [], "cnn": ["--num_filters", "16"], "lstm": ["--lstm_hidden_size", "16"]}
    folders = {}
    for (model, shape), linear in itertools.product(shapes.items(), (False, True)):
        flags = [*small, *shape] + (["--linear_bigram_buckets", "512"] if linear else [])
        name = f"{model}-linear" if linear else model
        folders[name] = train_checkpoint(sample_dir, tmp_path_factory.mktemp(name), model, 1, *flags)
    folders["tfidf"] = train_checkpoint(sample_dir, tmp_path_factory.mktemp("tfidf"), "tfidf", 1)
    return folders


@pytest.fixture(scope="module")
def test_titles(sample_dir) -> list[str]:
    return [record["title"] for _, record in read_records(sample_dir / "spanish.test.jsonl.gz", None, "title")]


@pytest.mark.parametrize("name", ["mlp", "mlp-linear", "cnn", "cnn-linear", "lstm", "lstm-linear", "tfidf"])
def test_a_copy_answers_as_its_checkpoint(checkpoints, test_titles, name, tmp_path):
    source = checkpoints[name]
    compact_checkpoint(source, tmp_path / "float32", int8_tables=False)
    checkpoint, copy = Predictor(str(source)), OnnxPredictor(tmp_path / "float32")
    assert copy.labels == checkpoint.labels
    card = (tmp_path / "float32" / "README.md").read_text()
    assert f"This is an ONNX serving copy of `{source.name}`" in card
    assert ("TF-IDF weights as saved" if name == "tfidf" else "float32 tables") in card
    expected, expected_unknown = checkpoint.predict_with_unknown_flags(test_titles, top_k=3)
    answers, unknown = copy.predict_with_unknown_flags(test_titles, top_k=3)
    assert unknown == expected_unknown
    assert [[p["label"] for p in a] for a in answers] == [[p["label"] for p in e] for e in expected]
    scores = np.array([[p["score"] for p in a] for a in answers])
    np.testing.assert_allclose(scores, [[p["score"] for p in e] for e in expected], atol=1e-5)
    if name == "tfidf":
        return
    # The default copy has int8 tables: it answers as the torch copy with the same tables, nearly as the checkpoint.
    compact_checkpoint(source, tmp_path / "int8")
    compact_checkpoint(source, tmp_path / "torch-int8", format="torch")
    int8 = [a[0]["label"] for a in OnnxPredictor(tmp_path / "int8").predict(test_titles)]
    assert int8 == [a[0]["label"] for a in Predictor(str(tmp_path / "torch-int8")).predict(test_titles)]
    assert np.mean([a == e[0]["label"] for a, e in zip(int8, expected)]) >= 0.99
    assert weights_size(tmp_path / "int8") < weights_size(tmp_path / "float32")


def test_an_ensemble_of_copies_answers_as_the_ensemble_of_checkpoints(checkpoints, test_titles, tmp_path):
    members = [checkpoints["mlp"], checkpoints["lstm-linear"]]
    copies = [tmp_path / "mlp", tmp_path / "lstm"]
    for member, copy in zip(members, copies):
        compact_checkpoint(member, copy, int8_tables=False)
    ensemble_file = tmp_path / "ensemble.json"
    ensemble_file.write_text(json.dumps({"members": ["mlp", "lstm"]}))
    expected = [a[0]["label"] for a in Predictor([str(m) for m in members]).predict(test_titles)]
    assert [a[0]["label"] for a in OnnxPredictor(copies).predict(test_titles)] == expected
    assert [a[0]["label"] for a in OnnxPredictor(ensemble_file).predict(test_titles)] == expected
    result = run_predict("--model", str(copies[0]), "--model", str(checkpoints["cnn"]), "Heladera")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: --model: {copies[0]} is an ONNX copy and {checkpoints['cnn']} is not; an ensemble is of ONNX "
        "copies alone or of checkpoints alone"
    ]


def run_predict(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    code = prelude + "import runpy, sys\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
    return subprocess.run(
        [sys.executable, "-c", code, *PREDICT[1:], *args],
        capture_output=True,
        text=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )


# A process where torch, transformers and datasets are not installed: importing any of them fails.
WITHOUT_TORCH = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "datasets"):
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, Block())
"""
REPORT_MODULES = """
import atexit, sys
atexit.register(lambda: print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "transformers", "datasets"}),
                              file=sys.stderr))
"""


def test_predicting_with_a_copy_imports_no_torch_transformers_or_datasets(checkpoints, sample_dir, tmp_path):
    copy = tmp_path / "copy"
    compact_checkpoint(checkpoints["lstm-linear"], copy)
    test_file = sample_dir / "spanish.test.jsonl.gz"
    result = run_predict("--model", str(copy), "--input", str(test_file), "--top_k", "2", prelude=REPORT_MODULES)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"
    expected = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(expected) == 1000 and all(len(line["predictions"]) == 2 for line in expected)
    # ... and so it runs where they are not installed (README's slim install), with the same answers.
    result = run_predict("--model", str(copy), "--input", str(test_file), "--top_k", "2", prelude=WITHOUT_TORCH)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == expected


def test_copies_are_refused_where_they_cannot_serve(checkpoints, tmp_path):
    copy = tmp_path / "copy"
    compact_checkpoint(checkpoints["mlp"], copy)
    with pytest.raises(MeliError, match="is an ONNX copy already; give the checkpoint it came from"):
        compact_checkpoint(copy, tmp_path / "again")
    with pytest.raises(MeliError, match="--float32_tables goes with --format onnx"):
        compact_checkpoint(checkpoints["mlp"], tmp_path / "torch", format="torch", int8_tables=False)
    result = run_predict("--model", str(copy), "--device", "cuda", "Heladera")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --device cuda: ONNX copies run on the CPU; serve the checkpoint for a GPU"
    config = json.loads((copy / SERVING_CONFIG_FILE).read_text())
    for field, value, message in [
        (
            "format_version",
            2,
            "format_version 2; this meli-hf reads version 1: write the copy again with this version's "
            "scripts/compact.py",
        ),
        ("labels", [], "labels: expected a list of category names"),
        ("max_length", "64", "max_length: expected a whole number, got '64'"),
    ]:
        (copy / SERVING_CONFIG_FILE).write_text(json.dumps(config | {field: value}))
        result = run_predict("--model", str(copy), "Heladera")
        assert result.returncode == 2
        assert result.stderr.strip() == f"error: {copy / SERVING_CONFIG_FILE}: {message}", result.stderr
