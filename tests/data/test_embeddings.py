import gzip
import logging

import numpy as np
import pytest

from meli_hf.data.embeddings import load_word_vectors
from meli_hf.errors import MeliDataError


def _write(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def test_rows_follow_the_vocabulary(tmp_path):
    path = tmp_path / "vectors.txt.gz"
    _write(path, ["3 2", "celular 1.0 2.0", "desconocida 9 9", "samsung -1 0.5"])
    vocabulary = {"[PAD]": 0, "[UNK]": 1, "samsung": 2, "celular": 3, "lenovo": 4}
    vectors = load_word_vectors(path, vocabulary)
    assert vectors.matrix.shape == (5, 2) and vectors.matrix.dtype == np.float32
    np.testing.assert_array_equal(vectors.matrix[0], [0, 0])
    np.testing.assert_array_equal(vectors.matrix[2], [-1, 0.5])
    np.testing.assert_array_equal(vectors.matrix[3], [1, 2])
    assert np.abs(vectors.matrix[4]).max() < 1.0  # not found: small random row
    assert (vectors.found, vectors.coverage) == (2, pytest.approx(2 / 3))


def test_sample_vectors_cover_most_of_the_vocabulary(sample_dir):
    from meli_hf.data.loading import read_token_to_index

    vocabulary = read_token_to_index(sample_dir / "spanish_token_to_index.json.gz")
    vectors = load_word_vectors(sample_dir / "word_vectors.txt.gz", vocabulary)
    assert 0.85 < vectors.coverage < 0.95


def test_wrong_dimension_names_file_and_line(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("2 3\ncelular 1 2 3\nsamsung 1 2\n")
    with pytest.raises(ValueError, match=r"vectors.txt, line 3: word 'samsung' has 2 values, expected 3"):
        load_word_vectors(path, {"[PAD]": 0, "[UNK]": 1, "celular": 2, "samsung": 3})


def test_missing_header_is_reported(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("celular 1 2 3\n")
    with pytest.raises(ValueError, match="line 1: expected a word2vec header"):
        load_word_vectors(path, {"[PAD]": 0, "[UNK]": 1, "celular": 2})


VOCABULARY = {"[PAD]": 0, "[UNK]": 1, "celular": 2, "samsung": 3}


@pytest.mark.parametrize(
    "lines, message",
    [
        (["2 2", "celular 1 nan", "samsung 1 2"], r"line 2: word 'celular' has a value that is not a number"),
        (["2 2", "celular 1 2", "samsung inf 2"], r"line 3: word 'samsung' has a value that is not a number"),
        (["2 2", "otra 1 -Infinity", "celular 1 2"], r"line 2: word 'otra' has a value that is not a number"),
        (["2 2", "celular 1 2", "samsung 1e39 2"], r"line 3: word 'samsung' has a value beyond float32's range"),
        (["0 0"], r"line 1: the header announces 0 words of 0 values: no vectors"),
        (["2 2", "celular\t1\t2", "samsung 1 2"], r"line 2: tab-separated values"),
        (["2 2", "celular 1\t2"], r"line 2: tab-separated values"),
        ([], r"empty file \(no word2vec header\)"),
    ],
)
def test_malformed_vector_files_name_file_and_line(tmp_path, lines, message):
    path = tmp_path / "vectors.txt"
    path.write_text("\n".join(lines) + "\n" if lines else "")
    with pytest.raises(MeliDataError, match=r"vectors.txt(: |, )" + message):
        load_word_vectors(path, VOCABULARY)


def test_low_coverage_warns_and_none_fails(tmp_path, caplog):
    path = tmp_path / "vectors.txt"
    path.write_text("2 2\ncelular 1 2\nlenovo 3 4\n")
    vocabulary = VOCABULARY | {f"word{i}": i + 4 for i in range(8)}
    with caplog.at_level(logging.INFO, logger="meli_hf.data.embeddings"):
        assert load_word_vectors(path, vocabulary).found == 1
    assert [r.levelno for r in caplog.records] == [logging.WARNING] and "coverage 10.0%" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="meli_hf.data.embeddings"):
        load_word_vectors(path, VOCABULARY)
    assert [r.levelno for r in caplog.records] == [logging.INFO]  # half of two words: enough not to warn
    with pytest.raises(MeliDataError, match="vectors.txt: none of the vocabulary's 1 words has a vector"):
        load_word_vectors(path, {"[PAD]": 0, "[UNK]": 1, "heladera": 2})


def test_trailing_spaces_and_a_byte_order_mark_are_accepted(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_bytes("\ufeff2 2\ncelular 1 2 \nsamsung 3 4\r\n".encode())
    vectors = load_word_vectors(path, VOCABULARY)
    np.testing.assert_array_equal(vectors.matrix[2:], [[1, 2], [3, 4]])
