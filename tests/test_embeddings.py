import gzip

import numpy as np
import pytest

from meli_hf.embeddings import load_word_vectors


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
    from meli_hf.data import read_token_to_index

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
