"""Word vectors learnt from the training titles alone (fastText skip-gram: no labels, no subwords), written as
word2vec text, the file `scripts/train.py --word_vectors` reads.

Where the course's SBW vectors are not at hand (the challenge CSV files), these start the word embeddings of the
MLP, CNN and LSTM better than random vectors do: on the real sample they lift the MLP from 0.869 to 0.875 and take
the LSTM to 0.883 test balanced accuracy (BENCHMARKS.md). Only the training split is read, so that validation and
test titles leave no trace in the model.

    python -m meli_hf.word_vectors --data_dir ../shared/data/meli2019-es --output outputs/title-vectors-300.txt
    python scripts/train.py --model lstm --data_dir ../shared/data/meli2019-es \\
        --word_vectors outputs/title-vectors-300.txt
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from transformers.hf_argparser import string_to_bool

from .cli import one_line_parser_errors, user_errors
from .data import find_source_files, load_meli
from .errors import MeliError
from .io import atomic_output, check_output_spares_inputs
from .tokenization import keeps_numbers, title_words
from .training_args import require_at_least_one


def learn_title_vectors(
    titles: Iterable[str],
    output: str | Path,
    dim: int = 300,
    epochs: int = 5,
    min_count: int = 2,
    threads: int = 2,
    keep_numbers: bool = False,
    seed: int = 42,
) -> int:
    """Train skip-gram vectors on the words a word tokenizer sees in `titles` (`keep_numbers` as the tokenizer's)
    and write them to `output` as word2vec text; an earlier file there is replaced only by a complete one.
    Returns the number of words written.

    The vectors start from uniform noise drawn here (fastText's own scale, 1/dim), handed to fastText as pretrained
    vectors: fastText-numpy2 initialises only a tenth of its input matrix per thread up to ten threads and leaves the
    rest as the memory held it, which made training stop with "Encountered NaN" in processes that had freed large
    blocks before (loading the titles does).
    """
    if importlib.util.find_spec("fasttext") is None:
        raise MeliError("title vectors need fastText: pip install -e '.[vectors]'")
    import fasttext

    words_of = title_words(keep_numbers)
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as work:
        corpus, start = Path(work) / "titles.txt", Path(work) / "start.vec"
        with corpus.open("w", encoding="utf-8") as stream:
            for title in titles:
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
            verbose=0,
        )
    words = [word for word in model.get_words() if word != "</s>"]
    with atomic_output(output) as stream:
        stream.write(f"{len(words)} {dim}\n")
        for word in words:
            stream.write(word + " " + " ".join(f"{value:.5f}" for value in model.get_word_vector(word)) + "\n")
    return len(words)


def main(args: list[str] | None = None) -> None:
    parser = one_line_parser_errors(
        argparse.ArgumentParser(
            prog="python -m meli_hf.word_vectors",
            description="Learn word vectors from the training titles of a data folder (fastText skip-gram) and "
            "write them as word2vec text for scripts/train.py --word_vectors.",
        )
    )
    parser.add_argument("--data_dir", required=True, help="Folder of challenge CSV or course JSONL files.")
    parser.add_argument("--output", required=True, help="word2vec text file to write (.txt).")
    parser.add_argument("--language", default="spanish", help="Course files: the language of the files to read.")
    parser.add_argument("--dim", type=int, default=300, help="Vector size (default: 300, as the SBW vectors).")
    parser.add_argument("--epochs", type=int, default=5, help="Passes over the titles (default: 5).")
    parser.add_argument("--min_count", type=int, default=2, help="Words seen fewer times get no vector (default: 2).")
    parser.add_argument("--threads", type=int, default=2, help="fastText threads (default: 2).")
    parser.add_argument("--seed", type=int, default=42, help="Seed of the vectors' starting noise (default: 42).")
    parser.add_argument(
        "--keep_numbers",
        type=string_to_bool,
        nargs="?",
        const=True,
        help="Keep numbers and words with digits (32gb, i5), as train.py's vocabulary does: default true for "
        "challenge CSV files, as train.py's; pass the same value to both.",
    )
    with user_errors():
        flags = parser.parse_args(args)
        require_at_least_one(flags, "dim", "epochs", "min_count", "threads")
        if not Path(flags.data_dir).is_dir():
            raise MeliError(f"--data_dir {flags.data_dir}: folder not found")
        started = time.perf_counter()
        sources = find_source_files(flags.data_dir, flags.language)
        check_output_spares_inputs(
            "--output",
            flags.output,
            {"--data_dir": [flags.data_dir, *(source.path for source in sources.values())]},
            replaces_folder=False,
        )
        train_file = sources["train"].path  # validation and test unread
        keep_numbers = keeps_numbers(flags.keep_numbers, flags.data_dir, sources["train"].format == "course")
        titles = load_meli({"train": train_file})["train"]["title"]
        words = learn_title_vectors(
            titles,
            flags.output,
            dim=flags.dim,
            epochs=flags.epochs,
            min_count=flags.min_count,
            threads=flags.threads,
            keep_numbers=keep_numbers,
            seed=flags.seed,
        )
        print(
            f"{len(titles):,} training titles of {train_file} -> {words:,} words x {flags.dim} dims (skip-gram, "
            f"{flags.epochs} epochs, min count {flags.min_count}) in {time.perf_counter() - started:.0f} s: "
            f"{flags.output}"
        )


if __name__ == "__main__":
    main()
