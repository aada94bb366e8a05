"""Odd input gets its own clear answer, never a silently wrong result: each case runs a command as a user would
(predict.py, train.py, ensemble.py) and checks its one-line refusal, or what it writes."""

import csv
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import train_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def run(script: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True, env=ENV, **kwargs
    )


def refused(result: subprocess.CompletedProcess, *words: str) -> None:
    """Refused in one `error:` line (train.py's log of the data read so far may come before it, predict.py's note that
    the output file was left as it was after it)."""
    assert result.returncode == 2, result.stdout[-1000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    for word in words:
        assert word in errors[0], errors[0]


@pytest.fixture(scope="module")
def model(sample_dir, tmp_path_factory) -> str:
    return str(train_checkpoint(sample_dir, tmp_path_factory.mktemp("mlp"), "mlp", 1))


@pytest.fixture
def csv_data(tmp_path) -> Path:
    """A challenge-format data folder: a few titles of three categories."""
    folder = tmp_path / "data"
    folder.mkdir()
    rows = [
        ("Heladera Gafa No Frost", "REFRIGERATORS"),
        ("Zapatillas Nike Air", "SNEAKERS"),
        ("Taladro Bosch", "DRILLS"),
    ]
    for split in ("train", "validation", "test"):
        with gzip.open(folder / f"{split}.csv.gz", "wt", encoding="utf-8") as out:
            out.write("title,category,language\n" + "".join(f"{t},{c},spanish\n" for t, c in rows * 4))
    return folder


def test_a_header_line_repeated_inside_a_csv_is_refused_with_its_line(model, csv_data, tmp_path):
    titles = tmp_path / "titles.csv"
    titles.write_text("title,id\nHeladera Gafa,1\ntitle,id\nTaladro Bosch,2\n")
    refused(run("predict.py", "--model", model, "--input", str(titles)), "titles.csv, line 3", "header line again")
    with gzip.open(csv_data / "train.csv.gz", "at", encoding="utf-8") as out:
        out.write("title,category,language\nLavarropas Drean,WASHERS,spanish\n")
    result = run("train.py", "--data_dir", str(csv_data), "--output_dir", str(tmp_path / "run"))
    refused(result, "train.csv.gz, line 14", "header line again")


def test_two_files_for_one_split_are_refused_naming_both(csv_data, tmp_path):
    shutil.copy(csv_data / "train.csv.gz", csv_data / "spanish.train.jsonl.gz")
    with gzip.open(csv_data / "train.csv.gz", "rt") as source:
        (csv_data / "train.csv").write_text(source.read())
    result = run("train.py", "--data_dir", str(csv_data), "--output_dir", str(tmp_path / "run"))
    refused(result, "spanish.train.jsonl.gz and train.csv.gz and train.csv are both the train split")


def test_training_data_of_one_category_is_refused(csv_data, tmp_path):
    for split in ("train", "validation", "test"):
        with gzip.open(csv_data / f"{split}.csv.gz", "wt") as out:
            out.write("title,category\nHeladera Gafa,REFRIGERATORS\nHeladera Drean,REFRIGERATORS\n")
    result = run("train.py", "--data_dir", str(csv_data), "--output_dir", str(tmp_path / "run"))
    refused(result, f"--data_dir {csv_data}: the train split holds one category only (REFRIGERATORS)")
    assert not (tmp_path / "run").exists()


def test_old_mac_line_ends_separate_titles(model, tmp_path):
    titles = tmp_path / "titles.txt"
    titles.write_bytes(b"Heladera Gafa\rZapatillas Nike\rTaladro Bosch\r")
    result = run("predict.py", "--model", model, "--input", str(titles))
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["title"] for line in result.stdout.splitlines()] == [
        "Heladera Gafa",
        "Zapatillas Nike",
        "Taladro Bosch",
    ]


def test_a_csv_naming_a_column_twice_is_refused(model, tmp_path):
    titles = tmp_path / "titles.csv"
    titles.write_text("title,brand,title\nHeladera,Gafa,Heladera Gafa\n")
    refused(
        run("predict.py", "--model", model, "--input", str(titles)), "line 1, field 'title'", "names this column twice"
    )


@pytest.mark.parametrize(
    "header, suffix, field",
    [
        ("title,label_1", ".csv", "label_1"),
        ("title,error", ".csv", "error"),
        ("title,predictions", ".jsonl", "predictions"),
    ],
)
def test_input_fields_named_like_output_fields_are_refused(model, tmp_path, header, suffix, field):
    titles = tmp_path / "titles.csv"
    titles.write_text(f"{header}\nHeladera Gafa,x\n")
    output = tmp_path / f"out{suffix}"
    result = run("predict.py", "--model", model, "--input", str(titles), "--output", str(output))
    refused(result, f"line 2, field '{field}'", "named like an output field")
    assert not output.exists()


def test_titles_without_a_known_word_are_flagged_and_still_scored(model, tmp_path):
    titles = tmp_path / "titles.csv"
    titles.write_text("title,category\nHeladera Gafa No Frost,REFRIGERATORS\n¡¡!! 😀 de la,REFRIGERATORS\n")
    result = run(
        "predict.py", "--model", model, "--input", str(titles), "--output", str(tmp_path / "o.csv"), "--evaluate"
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "o.csv").open(encoding="utf-8")))
    assert [row["warning"] for row in rows] == ["", "no known word"]
    assert rows[1]["label_1"]  # still predicted, and scored: two rows evaluated
    assert "1 titles hold no word the model knows" in result.stderr and "n=2" in result.stderr


def test_ensemble_candidates_of_other_categories_are_refused(model, csv_data, sample_dir, tmp_path):
    other = train_checkpoint(csv_data, tmp_path / "other", "mlp", 1, "--eval_strategy", "no")
    result = run(
        "ensemble.py",
        "--candidates",
        model,
        str(other),
        "--data_dir",
        str(sample_dir),
        "--output",
        str(tmp_path / "e.json"),
    )
    refused(result, f"--candidates {other} was trained on other categories than {model}")
    assert not (tmp_path / "e.json").exists()


def test_jsonl_oddities_are_named_by_line_and_field(model, tmp_path):
    surrogate = tmp_path / "surrogate.jsonl"
    surrogate.write_text('{"title": "Heladera Gafa"}\n{"title": "Heladera \\ud800 Gafa"}\n')
    refused(run("predict.py", "--model", model, "--input", str(surrogate)), "line 2, field 'title'", "lone surrogate")
    differing = tmp_path / "differing.jsonl"
    differing.write_text(
        '{"title": "Heladera Gafa", "id": 1}\n{"title": "Taladro"}\n{"title": "Zapatillas", "seller": "ana"}\n'
    )
    output = tmp_path / "o.csv"
    result = run("predict.py", "--model", model, "--input", str(differing), "--output", str(output))
    refused(result, "differing.jsonl, line 3, field 'seller'", "a field the first record lacks")
    assert not output.exists()
    differing.write_text('{"title": "Heladera Gafa", "id": 1}\n{"title": "Taladro"}\n')
    assert run("predict.py", "--model", model, "--input", str(differing), "--output", str(output)).returncode == 0
    assert [row["id"] for row in csv.DictReader(output.open())] == ["1", ""]  # a missing field is an empty cell


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"num_train_epochs": "abc"}, "num_train_epochs: expected a number, got 'abc'"),
        ({"max_train_samples": 10.5}, "max_train_samples: expected a whole number, got 10.5"),
        ({"model": "lstm", "bidirectional": "yes"}, "bidirectional: expected true or false, got 'yes'"),
        ({"hidden_layers": 512}, "hidden_layers: expected a list, got 512"),
        ({"train_sampling_strategy": "shuffled"}, "train_sampling_strategy: expected one of random, sequential"),
    ],
)
def test_an_arguments_file_of_the_wrong_types_names_the_field(tmp_path, arguments, message):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(arguments | {"output_dir": str(tmp_path / "run")}))
    refused(run("train.py", str(path)), f"{path}: {message}")


def test_output_names_and_input_pipes(model, tmp_path):
    folder = tmp_path / "predictions"
    refused(run("predict.py", "--model", model, "Heladera", "--output", f"{folder}/"), "names a folder")
    folder.mkdir()
    refused(run("predict.py", "--model", model, "Heladera", "--output", str(folder)), "names a folder")
    assert list(folder.iterdir()) == []
    # `--input <(...)`: a pipe, read as a file of lines.
    read_end, write_end = os.pipe()
    os.write(write_end, b"Heladera Gafa\nTaladro Bosch\n")
    os.close(write_end)
    result = run("predict.py", "--model", model, "--input", f"/dev/fd/{read_end}", pass_fds=(read_end,))
    os.close(read_end)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["title"] for line in result.stdout.splitlines()] == ["Heladera Gafa", "Taladro Bosch"]


def test_top_k_beyond_the_categories_is_cut_to_them(model, tmp_path):
    result = run(
        "predict.py", "--model", model, "Heladera Gafa", "--top_k", "1000", "--output", str(tmp_path / "o.csv")
    )
    assert result.returncode == 0, result.stderr
    assert "--top_k 1000: the model knows 30 categories; each title gets 30" in result.stderr
    header = next(csv.reader((tmp_path / "o.csv").open()))
    assert "label_30" in header and "label_31" not in header


@pytest.mark.parametrize(
    "signum, status, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_an_interrupted_prediction_says_so_in_one_line_and_leaves_no_partial_output(
    model, tmp_path, signum, status, word
):
    output = tmp_path / "o.jsonl"
    output.write_text("earlier predictions\n")
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "predict.py"),
            "--model",
            model,
            "--input",
            "-",
            "--output",
            str(output),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        # A suite started in the background (`make test &`) hands its children SIGINT ignored, which Python then
        # leaves ignored: the child gets the default a user's shell gives it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    process.stdin.write("Heladera Gafa\n" * 300)  # a batch and more, then the input stays open
    process.stdin.flush()
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".o.jsonl.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.2)  # the model is loaded and the output is being written
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status
    assert stderr.strip().splitlines()[-2:] == [
        f"error: {word}",
        f"{output} was not written (an existing file is left as it was)",
    ]
    assert "Traceback" not in stderr
    assert output.read_text() == "earlier predictions\n" and sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl"]
