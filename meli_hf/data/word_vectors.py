"""Word vectors learnt from the training titles alone (fastText skip-gram: no labels, no subwords), written as
word2vec text, the file `scripts/train.py --word_vectors` reads.

Where the course's SBW vectors are not at hand (the challenge CSV files), these start the word embeddings of the MLP,
CNN and LSTM better than random vectors do (BENCHMARKS.md). Only the training split is read, so that validation and
test titles leave no trace in the model.

    python scripts/word_vectors.py --data_dir ../shared/data/meli2019-es --output outputs/title-vectors-300.txt
    python scripts/train.py --model lstm --data_dir ../shared/data/meli2019-es \\
        --word_vectors outputs/title-vectors-300.txt
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import MeliError
from ..files import atomic_output
from ..private_apis import dataset_fingerprint
from .tokenization import title_words

logger = logging.getLogger(__name__)

# Bump when the vectors learnt for the same titles and settings change, so that cached files are learnt again.
TITLE_VECTORS_VERSION = 1


def cached_title_vectors(train, keep_numbers: bool, dim: int, cache_dir: str | Path) -> Path:
    """Vectors learnt from a training split's titles (`learn_title_vectors`' defaults, `dim` dimensions), learnt once
    and kept in `cache_dir` under a key of the split's fingerprint (its file, filters and row limit), `keep_numbers`
    and the vector settings: a second run on the same data reads them back, an edited file gets its own."""
    from datasets.fingerprint import Hasher

    key = Hasher.hash([dataset_fingerprint(train), keep_numbers, dim, TITLE_VECTORS_VERSION])
    path = Path(cache_dir) / f"title-vectors-{dim}-{key}.txt"
    if path.is_file():
        logger.info("title vectors: read back from %s", path)
    else:
        logger.info("title vectors: learning them from %d training titles into %s", len(train), path)
        learn_title_vectors(
            (batch["title"] for batch in train.select_columns(["title"]).iter(batch_size=10_000)),
            path,
            dim=dim,
            keep_numbers=keep_numbers,
            progress=True,
        )
    return path


def learn_title_vectors(
    titles: Iterable[str],
    output: str | Path,
    dim: int = 300,
    epochs: int = 5,
    min_count: int = 2,
    threads: int = 2,
    keep_numbers: bool = False,
    seed: int = 42,
    progress: bool = False,
) -> int:
    """Train skip-gram vectors on the words a word tokenizer sees in `titles` (`keep_numbers` as the tokenizer's)
    and write them to `output` as word2vec text; an earlier file there is replaced only by a complete one.
    Returns the number of words written. `titles` may come in batches (lists of titles); `progress` shows fastText's
    progress bar on stderr.

    The vectors start from uniform noise drawn here (fastText's own scale, 1/dim), handed to fastText as pretrained
    vectors: fastText-numpy2 initialises only a tenth of its input matrix per thread up to ten threads and leaves the
    rest as the memory held it, which made training stop with "Encountered NaN" in processes that had freed large
    blocks before (loading the titles does).
    """
    if importlib.util.find_spec("fasttext") is None:
        raise MeliError("title vectors need fastText (fasttext-numpy2): pip install -e .")
    import fasttext

    words_of = title_words(keep_numbers)
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as work:
        corpus, start = Path(work) / "titles.txt", Path(work) / "start.vec"
        with corpus.open("w", encoding="utf-8") as stream:
            for batch in titles:
                for title in [batch] if isinstance(batch, str) else batch:
                    words = words_of(title)
                    counts.update(words)
                    stream.write(" ".join(words) + "\n")
        vocabulary = [word for word, count in counts.items() if count >= min_count]
        if not vocabulary:
            raise MeliError(f"no word of the titles is seen {min_count} times or more: lower --min_count")
        noise = np.random.default_rng(seed).uniform(-1 / dim, 1 / dim, (len(vocabulary) + 1, dim))
        with start.open("w", encoding="utf-8") as stream:
            stream.write(f"{len(vocabulary) + 1} {dim}\n")
            for word, row in zip([*vocabulary, "</s>"], noise):  # "</s>": fastText's end of line, a word to it
                stream.write(word + " " + " ".join(f"{value:.6g}" for value in row) + "\n")
        model = fasttext.train_unsupervised(
            str(corpus),
            model="skipgram",
            dim=dim,
            epoch=epochs,
            minCount=min_count,
            minn=0,
            maxn=0,
            bucket=0,
            thread=threads,
            pretrainedVectors=str(start),
            verbose=2 if progress else 0,
        )
    words = [word for word in model.get_words() if word != "</s>"]
    with atomic_output(output) as stream:
        stream.write(f"{len(words)} {dim}\n")
        for word in words:
            stream.write(word + " " + " ".join(f"{value:.5f}" for value in model.get_word_vector(word)) + "\n")
    return len(words)
