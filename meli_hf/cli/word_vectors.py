"""`python scripts/word_vectors.py`: learn word vectors from the training titles of a data folder and write them as
word2vec text for `scripts/train.py --word_vectors`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from transformers.hf_argparser import string_to_bool

from ..data.loading import find_source_files, load_meli
from ..data.tokenization import keeps_numbers
from ..data.word_vectors import learn_title_vectors
from ..errors import MeliError, one_line_parser_errors
from ..files import check_output_spares_inputs
from ..training.arguments import require_at_least_one
from . import user_errors


def main(args: list[str] | None = None) -> None:
    parser = one_line_parser_errors(
        argparse.ArgumentParser(
            prog="scripts/word_vectors.py",
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
