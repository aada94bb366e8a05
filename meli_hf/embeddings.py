"""word2vec text vectors (e.g. `SBW-vectors-300-min5.txt.gz`) -> an embedding matrix aligned with a vocabulary.

The file is streamed line by line and only the rows of vocabulary words are kept, so the ~1M-word SBW file
never sits in memory whole.
"""

from __future__ import annotations

import bz2
import gzip
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

UNFOUND_WORD_SCALE = 0.1


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


def _open_text(path: Path):
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    return opener(path, "rt", encoding="utf-8", errors="strict")


def load_word_vectors(path: str | Path, vocabulary: Mapping[str, int], seed: int = 42) -> WordVectors:
    """Read `path` (word2vec text, header `count dim`) into a float32 matrix indexed by `vocabulary` ids."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: word-vector file not found")
    size = max(vocabulary.values()) + 1
    with _open_text(path) as fh:
        header = fh.readline().split()
        if len(header) != 2 or not all(part.isdigit() for part in header):
            raise ValueError(f"{path}, line 1: expected a word2vec header 'count dim', got {' '.join(header)[:80]!r}")
        dim = int(header[1])
        rng = np.random.default_rng(seed)
        matrix = rng.normal(scale=UNFOUND_WORD_SCALE, size=(size, dim)).astype(np.float32)
        matrix[0] = 0.0
        found = set()
        for number, line in enumerate(fh, start=2):
            word, _, values = line.rstrip("\n").partition(" ")
            index = vocabulary.get(word)
            if index is None or index < 2 or index in found:
                continue
            vector = np.array(values.split(), dtype=np.float32)
            if vector.shape != (dim,):
                raise ValueError(f"{path}, line {number}: word {word!r} has {vector.size} values, expected {dim}")
            matrix[index] = vector
            found.add(index)
    vectors = WordVectors(matrix, len(found), size)
    logger.info(
        "word vectors %s: %d dims, %d of %d words found (coverage %.1f%%)",
        path.name,
        dim,
        vectors.found,
        size - 2,
        100 * vectors.coverage,
    )
    return vectors
