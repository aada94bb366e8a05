"""word2vec text vectors (e.g. `SBW-vectors-300-min5.txt.gz`) -> an embedding matrix aligned with a vocabulary.

The file is streamed line by line and only the rows of vocabulary words are kept, so the ~1M-word SBW file
never sits in memory whole. Every line is checked for the format (space-separated, `dim` numbers); a value that
is not a finite number, a bad header, or a vocabulary the file does not cover at all is an error naming the
file and line, since any of them would train silently on garbage.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MeliDataError
from ..files import read_lines

logger = logging.getLogger(__name__)

UNFOUND_WORD_SCALE = 0.1
# Below this share of the vocabulary found in the file, the vectors are mostly random: worth a warning.
LOW_COVERAGE = 0.5


@dataclass
class WordVectors:
    """An embedding matrix (row i = word id i, row 0 = padding = zeros) and how much of the vocabulary it covers."""

    matrix: np.ndarray
    found: int
    vocabulary_size: int

    @property
    def coverage(self) -> float:
        """Share of the vocabulary's words (padding and unknown excluded) that the vector file has."""
        return self.found / max(self.vocabulary_size - 2, 1)


def _read_header(path: Path, line: str) -> int:
    """The vector size from the `count dim` header line."""
    header = line.split()
    if len(header) != 2 or not all(part.isdigit() for part in header):
        raise MeliDataError(path, 1, None, f"expected a word2vec header 'count dim', got {line.strip()[:80]!r}")
    count, dim = map(int, header)
    if count == 0 or dim == 0:
        raise MeliDataError(path, 1, None, f"the header announces {count} words of {dim} values: no vectors")
    return dim


def _check_line(path: Path, number: int, word: str, values: str, dim: int) -> None:
    """Check the line's format; every line is checked, not only the vocabulary's words, in C-speed string scans."""
    if "\t" in word or "\t" in values:
        raise MeliDataError(path, number, None, "tab-separated values; word2vec text separates them with spaces")
    # Counting separators is exact for single spaces; anything else is counted properly.
    count = values.count(" ") + 1
    if count != dim:
        count = len(values.split())
    if count != dim:
        raise MeliDataError(path, number, None, f"word {word!r} has {count} values, expected {dim}")
    if "n" in values or "N" in values:  # nan, inf and infinity all hold an n; no decimal number does
        raise MeliDataError(path, number, None, f"word {word!r} has a value that is not a number (nan or inf)")


def _parse_vector(path: Path, number: int, word: str, values: str) -> np.ndarray:
    try:
        vector = np.array(values.split(), dtype=np.float64)
    except ValueError:
        raise MeliDataError(path, number, None, f"word {word!r} has a value that is not a number") from None
    if not (np.abs(vector) <= np.finfo(np.float32).max).all():
        raise MeliDataError(path, number, None, f"word {word!r} has a value beyond float32's range")
    return vector.astype(np.float32)


def load_word_vectors(path: str | Path, vocabulary: Mapping[str, int], seed: int = 42) -> WordVectors:
    """Read `path` (word2vec text, header `count dim`) into a float32 matrix indexed by `vocabulary` ids."""
    path = Path(path)
    size = max(vocabulary.values()) + 1
    lines = read_lines(path)
    first = next(lines, None)
    if first is None:
        raise MeliDataError(path, None, None, "empty file (no word2vec header)")
    dim = _read_header(path, first[1])
    rng = np.random.default_rng(seed)
    matrix = rng.normal(scale=UNFOUND_WORD_SCALE, size=(size, dim)).astype(np.float32)
    matrix[0] = 0.0
    found = set()
    for number, line in lines:
        line = line.rstrip("\r\n").rstrip(" ")
        if not line:
            continue
        word, _, values = line.partition(" ")
        _check_line(path, number, word, values, dim)
        index = vocabulary.get(word)
        if index is None or index < 2 or index in found:
            continue
        matrix[index] = _parse_vector(path, number, word, values)
        found.add(index)
    vectors = WordVectors(matrix, len(found), size)
    if not vectors.found:
        raise MeliDataError(
            path,
            None,
            None,
            f"none of the vocabulary's {size - 2} words has a vector (another language or tokenizer?)",
        )
    log = logger.warning if vectors.coverage < LOW_COVERAGE else logger.info
    log(
        "word vectors %s: %d dims, %d of %d words found (coverage %.1f%%%s)",
        path.name,
        dim,
        vectors.found,
        size - 2,
        100 * vectors.coverage,
        "; the other words start from random vectors" if vectors.coverage < LOW_COVERAGE else "",
    )
    return vectors
