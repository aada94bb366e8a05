#!/usr/bin/env python
"""Word vectors learnt from the training titles alone, as a stand-in for the course's SBW vectors on the real sample.

Users initialise the embeddings with `--word_vectors SBW-vectors-300-min5.txt.gz`; that file cannot reach this
machine. This trains fastText skip-gram vectors (no labels, no subwords) on the words meli-hf's word tokenizer keeps
from the training titles and writes them in word2vec text format, the file `--word_vectors` reads:

    python bench/title_vectors.py --data_dir ../shared/data/meli2019-es --output outputs/title-vectors-300.txt
    python scripts/train.py --model mlp --data_dir ../shared/data/meli2019-es \
        --word_vectors outputs/title-vectors-300.txt
"""

import argparse
import tempfile
import time
from pathlib import Path

from meli_hf import load_meli
from meli_hf.cli import M_MMAP_THRESHOLD, set_malloc_option
from meli_hf.data import find_source_files
from meli_hf.io import atomic_output
from meli_hf.tokenization import course_tokenize


def fix_mmap_threshold() -> None:
    """Make fastText's input matrix start as upstream fastText's does; call before the titles are loaded.

    fasttext-numpy2 0.10.4 keeps matrices in `posix_memalign` memory, which it does not clear, and its
    `DenseMatrix::uniform` draws only `thread`/10 of the input matrix (upstream's `std::vector` leaves the rest
    zero). The rest holds whatever the heap held: after loading the titles has allocated and freed large blocks,
    NaN or huge values, and training stops with "Encountered NaN." (seen at 10 to 100 dims). glibc raises its
    mmap threshold each time a large mmapped block is freed, so later large blocks come from the reused heap;
    fixed at its default of 128 KiB before the titles are loaded, large blocks keep coming from mmap as fresh
    zero pages.
    """
    set_malloc_option(M_MMAP_THRESHOLD, 128 * 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default="../shared/data/meli2019-es", help="challenge CSV or course folder")
    parser.add_argument("--output", required=True, help="word2vec text file to write")
    parser.add_argument("--dim", type=int, default=300, help="vector size (the SBW vectors have 300)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--min_count", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    fix_mmap_threshold()
    import fasttext

    started = time.perf_counter()
    train_file = find_source_files(args.data_dir)["train"].path  # validation and test are not read
    titles = load_meli({"train": train_file})["train"]["title"]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "titles.txt"
        corpus.write_text("".join(" ".join(course_tokenize(title)) + "\n" for title in titles), encoding="utf-8")
        model = fasttext.train_unsupervised(
            str(corpus),
            model="skipgram",
            dim=args.dim,
            epoch=args.epochs,
            minCount=args.min_count,
            minn=0,
            maxn=0,
            thread=args.threads,
            verbose=0,
        )
    words = [word for word in model.get_words() if word != "</s>"]  # fastText's end-of-line token is not a word
    output = Path(args.output)
    with atomic_output(output) as fh:  # an earlier vector file is replaced only by a complete one
        fh.write(f"{len(words)} {args.dim}\n")
        for word in words:
            fh.write(word + " " + " ".join(f"{value:.5f}" for value in model.get_word_vector(word)) + "\n")
    seconds = time.perf_counter() - started
    print(
        f"{len(titles):,} training titles -> {len(words):,} words x {args.dim} dims "
        f"(skip-gram, {args.epochs} epochs, min count {args.min_count}) in {seconds:.0f} s: {output}"
    )


if __name__ == "__main__":
    main()
