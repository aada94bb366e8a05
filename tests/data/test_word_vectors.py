"""`python scripts/word_vectors.py`: title vectors learnt from the training split alone, in the file format
`--word_vectors` reads."""

import csv
import gzip
import subprocess
import sys

import numpy as np
import pytest

from meli_hf.cli.word_vectors import main
from meli_hf.data.embeddings import load_word_vectors
from meli_hf.data.word_vectors import learn_title_vectors
from meli_hf.errors import MeliError

pytest.importorskip("fasttext")

TRAIN = ["Celular Samsung Galaxy 32gb Negro", "Funda Celular Samsung Galaxy", "Notebook Lenovo 8gb Ram"] * 20


def write_csv_folder(folder, validation_title: str):
    folder.mkdir()
    for split, titles in (("train", TRAIN), ("validation", [validation_title]), ("test", [validation_title])):
        with gzip.open(folder / f"{split}.csv.gz", "wt", encoding="utf-8", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["title", "category", "language"])
            writer.writerows([title, "CELLPHONES", "spanish"] for title in titles)
    return folder


def read_vectors(path) -> dict[str, np.ndarray]:
    lines = path.read_text(encoding="utf-8").splitlines()
    rows, dim = map(int, lines[0].split())
    vectors = {line.split()[0]: np.array(line.split()[1:], dtype=float) for line in lines[1:]}
    assert len(vectors) == rows and all(v.shape == (dim,) for v in vectors.values())
    return vectors


def test_command_learns_vectors_of_the_training_words_only(tmp_path):
    data = write_csv_folder(tmp_path / "data", "Heladera Whirlpool Inoxidable")
    output = tmp_path / "vectors.txt"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "meli_hf.cli.word_vectors",
            "--data_dir",
            str(data),
            "--output",
            str(output),
            "--dim",
            "8",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "60 training titles" in result.stdout and "words x 8 dims" in result.stdout
    vectors = read_vectors(output)
    # The tokenizer's words: lowercased, numbers kept (CSV files), no short words; nothing of validation or test.
    words = {"celular", "samsung", "galaxy", "negro", "funda", "notebook", "lenovo", "ram"}
    assert set(vectors) == words | {"32gb", "8gb"}
    assert all(np.isfinite(v).all() and np.abs(v).sum() > 0 for v in vectors.values())
    # The file starts the embeddings of a run: every vocabulary word found.
    found = load_word_vectors(output, {"[PAD]": 0, "[UNK]": 1, "celular": 2, "lenovo": 3})
    assert found.found == 2 and found.matrix.shape == (4, 8)


def test_keep_numbers_false_drops_digits_as_the_course_does_and_course_files_refuse_numbers(
    tmp_path, sample_dir, capsys
):
    data = write_csv_folder(tmp_path / "data", "Heladera")
    main(["--data_dir", str(data), "--output", str(tmp_path / "words.txt"), "--dim", "4", "--keep_numbers", "false"])
    assert set(read_vectors(tmp_path / "words.txt")) == {
        "celular", "samsung", "galaxy", "negro", "funda", "notebook", "lenovo", "ram"
    }  # fmt: skip
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--data_dir", str(sample_dir), "--output", str(tmp_path / "course.txt"), "--keep_numbers"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith(f"error: --keep_numbers: {sample_dir} holds course files")
    assert not (tmp_path / "course.txt").exists()


def test_keep_numbers_keeps_the_words_with_digits(tmp_path):
    learn_title_vectors(TRAIN, tmp_path / "numbers.txt", dim=4, epochs=1, keep_numbers=True)
    assert {"32gb", "8gb"} <= set(read_vectors(tmp_path / "numbers.txt"))
    learn_title_vectors(TRAIN, tmp_path / "words.txt", dim=4, epochs=1)
    assert not {"32gb", "8gb"} & set(read_vectors(tmp_path / "words.txt"))


def test_vectors_start_from_initialised_memory_after_large_frees(tmp_path):
    # fastText leaves 90% of its input matrix uninitialised; freed blocks full of NaN made training fail.
    for _ in range(5):
        garbage = np.full(4_000_000, np.nan)
        del garbage
        learn_title_vectors(TRAIN * 5, tmp_path / "vectors.txt", dim=300, epochs=1, min_count=1)
        assert all(np.isfinite(v).all() for v in read_vectors(tmp_path / "vectors.txt").values())


def test_a_failed_run_leaves_an_earlier_file_as_it_was(tmp_path):
    output = tmp_path / "vectors.txt"
    output.write_text("precious")
    with pytest.raises(MeliError, match="no word of the titles is seen 1000 times or more: lower --min_count"):
        learn_title_vectors(TRAIN, output, dim=4, min_count=1000)
    assert output.read_text() == "precious"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--dim", "0"], "error: --dim 0: must be at least 1"),
        (["--min_count", "-1"], "error: --min_count -1: must be at least 1"),
        (["--data_dir", "missing"], "error: --data_dir missing: folder not found"),
    ],
)
def test_bad_flags_are_one_line_errors(flags, message, tmp_path, capsys):
    data = write_csv_folder(tmp_path / "data", "Heladera")
    with pytest.raises(SystemExit) as exit_info:
        main(["--data_dir", str(data), "--output", str(tmp_path / "v.txt"), *flags])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == message


def test_a_data_file_is_never_the_output(tmp_path, capsys):
    data = write_csv_folder(tmp_path / "data", "Heladera")
    before = (data / "validation.csv.gz").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["--data_dir", str(data), "--output", str(data / "validation.csv.gz"), "--dim", "4"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: --output ") and "is --data_dir" in message
    assert (data / "validation.csv.gz").read_bytes() == before


def test_title_vectors_are_learnt_once_per_training_split_and_again_for_an_edited_one(tmp_path, caplog):
    import logging

    from meli_hf.data.loading import load_meli
    from meli_hf.data.word_vectors import cached_title_vectors

    data = write_csv_folder(tmp_path / "data", "Celular Samsung")
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="meli_hf"):
        first = cached_title_vectors(load_meli(data)["train"], True, 8, cache)
        again = cached_title_vectors(load_meli(data)["train"], True, 8, cache)
        without_numbers = cached_title_vectors(load_meli(data)["train"], False, 8, cache)
        smaller = cached_title_vectors(load_meli(data, max_rows={"train": 30})["train"], True, 8, cache)
    assert again == first and caplog.text.count("learning them") == 3 and "read back" in caplog.text
    assert "32gb" in read_vectors(first) and "32gb" not in read_vectors(without_numbers)
    assert len({first, without_numbers, smaller}) == 3
    with gzip.open(data / "train.csv.gz", "at", encoding="utf-8") as stream:
        stream.write("Mouse Logitech Inalambrico,CELLPHONES,spanish\n" * 2)
    edited = cached_title_vectors(load_meli(data)["train"], True, 8, cache)
    assert edited != first and "logitech" in read_vectors(edited)


def test_a_word_model_starts_from_title_vectors_unless_told_otherwise(tmp_path):
    from meli_hf.training.parsing import parse_training_arguments
    from meli_hf.training.run import run_training

    data = tmp_path / "data"
    data.mkdir()
    rows = "".join(f"{title},{'NOTEBOOKS' if 'Notebook' in title else 'CELLPHONES'},spanish\n" for title in TRAIN)
    for split in ("train", "validation", "test"):
        (data / f"{split}.csv").write_text("title,category,language\n" + rows)
    for folder, flags in (("learnt", []), ("random", ["--word_vectors", "none"])):
        arguments = ["--model", "mlp", "--data_dir", str(data), "--output_dir", str(tmp_path / folder)]
        arguments += ["--num_train_epochs", "1", "--eval_strategy", "no", "--load_best_model_at_end", "false"]
        run_training(*parse_training_arguments([*arguments, "--embedding_dim", "16", *flags])[:3])
    card = (tmp_path / "learnt" / "README.md").read_text()
    assert "| word_vectors | learnt from the training titles |" in card
    assert "word_vectors" not in (tmp_path / "random" / "README.md").read_text()
