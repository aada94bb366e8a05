#!/usr/bin/env python
"""Quality benchmark: the meli-hf baselines against fastText and TF-IDF + linear SGD on the real MeLi sample,
validation and test balanced accuracy, accuracy, macro-F1 and training time, side by side.

    python bench/quality.py --data_dir ../shared/data/meli2019-es --models mlp cnn lstm --output_dir outputs/quality

Each meli-hf model is trained by `scripts/train.py` with its defaults (as a user would run it) into
OUTPUT_DIR/<model>, once per `--seeds` value (a seed other than the Trainer's default 42 runs into
OUTPUT_DIR/<model>-seed<N>: the spread between seeds is the noise of a comparison); `--reuse` takes a finished run
found there (its `all_results.json`) instead of training again; `--word_vectors FILE` initialises every run's
word embeddings (all but `tfidf`'s) from FILE (the course's SBW vectors, or `python scripts/word_vectors.py`'s on the
real sample).
`--train_flags "..."` adds flags to every run (a recipe: `--num_train_epochs 4`). Every run reports its training
time (the Trainer's `train_runtime`) and its whole process's wall time (start-up, data, evaluation and saving too).
The peers are trained in this process on the same splits: fastText supervised (word bigrams, 10 epochs, lr 0.5,
titles lowercased and split on word characters: the anchor of speed and quality; fastText's default lr 0.1 scores
lower), the same with character 3-5-grams of every word (fastText's subword
features: do character n-grams help on these titles?), the same on the words meli-hf's word tokenizer keeps (the
course's preprocessing drops digits, words under 3 letters and stopwords: does that lose anything?) and
scikit-learn's TfidfVectorizer (word 1-2 grams) with SGDClassifier (`--peers` picks which; `--peers` alone skips
them). With several meli-hf runs, their ensemble is scored too: one `Predictor` over the finished runs, the mean
of their probabilities (`scripts/predict.py --model A --model B`); its training time is the sum of theirs.
"""

import argparse
import csv
import gzip
import json
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from transformers import TrainingArguments

from meli_hf import Predictor
from meli_hf.data.tokenization import course_tokenize
from meli_hf.training.registry import has_word_embeddings

ROOT = Path(__file__).resolve().parents[1]
WORDS = re.compile(r"\w+")
SPLITS = {"validation": "eval", "test": "test"}
DEFAULT_SEED = TrainingArguments.seed  # runs with the Trainer's default seed keep the folder OUTPUT_DIR/<model>


def read_split(path: Path) -> tuple[list[str], list[str]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [(row["title"], row["category"]) for row in csv.DictReader(fh)]
    return [title for title, _ in rows], [category for _, category in rows]


def scores(truth: list[str], predicted: list[str]) -> dict[str, float]:
    return {
        "balanced_accuracy": balanced_accuracy_score(truth, predicted),
        "accuracy": accuracy_score(truth, predicted),
        "macro_f1": f1_score(truth, predicted, average="macro"),
    }


def fasttext_line(title: str) -> str:
    return " ".join(WORDS.findall(title.lower()))


def course_line(title: str) -> str:
    return " ".join(course_tokenize(title))


def run_fasttext(
    data: dict, to_line: Callable[[str], str] = fasttext_line, character_ngrams: bool = False, **settings
) -> dict:
    """fastText supervised (word bigrams, 10 epochs) on `data`'s training titles; `settings` are more of
    `train_supervised`'s (`lr`, `dim`), scored on validation and test."""
    import fasttext

    with tempfile.TemporaryDirectory() as work:
        train_file = Path(work) / "train.txt"
        titles, categories = data["train"]
        train_file.write_text(
            "".join(f"__label__{c} {to_line(t)}\n" for t, c in zip(titles, categories)), encoding="utf-8"
        )
        start = time.perf_counter()
        subwords = {"minn": 3, "maxn": 5} if character_ngrams else {}
        model = fasttext.train_supervised(
            str(train_file), epoch=10, wordNgrams=2, verbose=0, **({"lr": 0.5} | subwords | settings)
        )
        seconds = time.perf_counter() - start
    result = {"train_seconds": seconds}
    for split in SPLITS:
        titles, truth = data[split]
        labels, _ = model.predict([to_line(t) for t in titles], k=1)
        result[split] = scores(truth, [label[0].removeprefix("__label__") for label in labels])
    result["process_seconds"] = time.perf_counter() - start  # training, then scoring both splits
    return result


def run_tfidf(data: dict) -> dict:
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True)
    features = vectorizer.fit_transform(data["train"][0])
    classifier = SGDClassifier(loss="modified_huber", alpha=2e-6, max_iter=10, tol=None, n_jobs=-1, random_state=0)
    classifier.fit(features, data["train"][1])
    result = {"train_seconds": time.perf_counter() - start}
    for split in SPLITS:
        titles, truth = data[split]
        result[split] = scores(truth, classifier.predict(vectorizer.transform(titles)))
    return result


def run_name(model: str, seed: int) -> str:
    return model if seed == DEFAULT_SEED else f"{model}-seed{seed}"


def run_meli(
    model: str, seed: int, data_dir: str, folder: Path, reuse: bool, word_vectors: str | None, flags: list[str]
) -> dict:
    """Train `--model` with scripts/train.py into `folder` (or reuse a finished run) and read its all_results.json."""
    results_file = folder / "all_results.json"
    process_seconds = None
    if not (reuse and results_file.is_file()):
        command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--model", model, "--data_dir", data_dir]
        command += ["--seed", str(seed), "--output_dir", str(folder), "--disable_tqdm", "true"]
        command += ["--overwrite_output_dir", "true"]  # a new measurement replaces an earlier run of the same name
        if word_vectors and has_word_embeddings(model):
            command += ["--word_vectors", word_vectors]
        command += flags
        print("running:", shlex.join(command), flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        process_seconds = time.perf_counter() - start
    metrics = json.loads(results_file.read_text())
    result = {"train_seconds": metrics["train_runtime"], "process_seconds": process_seconds}
    for split, prefix in SPLITS.items():
        result[split] = {name: metrics[f"{prefix}_{name}"] for name in ("balanced_accuracy", "accuracy", "macro_f1")}
    return result


def run_ensemble(folders: list[Path], data: dict, train_seconds: float) -> dict:
    """The finished runs as one `Predictor` ensemble (mean of their probabilities), as `scripts/predict.py` runs it."""
    predictor = Predictor(folders, batch_size=1024)
    result = {"train_seconds": train_seconds}
    for split in SPLITS:
        titles, truth = data[split]
        result[split] = scores(truth, [top[0]["label"] if top else "" for top in predictor.predict(titles)])
    return result


PEERS = {
    "fasttext": ("fastText", run_fasttext),
    "fasttext_chars": ("fastText, chars", lambda data: run_fasttext(data, character_ngrams=True)),
    "fasttext_course": ("fastText, course words", lambda data: run_fasttext(data, to_line=course_line)),
    "tfidf": ("TF-IDF + SGD", run_tfidf),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data/meli2019-es", help="Challenge CSV folder.")
    parser.add_argument("--models", nargs="*", default=["mlp", "cnn", "lstm"], help="meli-hf models to train.")
    parser.add_argument("--output_dir", default="outputs/quality", help="Where the meli-hf runs are written.")
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[DEFAULT_SEED], help="Seeds each model is trained with (--seed)."
    )
    parser.add_argument("--reuse", action="store_true", help="Reuse finished runs in OUTPUT_DIR/<model>.")
    parser.add_argument("--word_vectors", help="word2vec text file every meli-hf run starts its embeddings from.")
    parser.add_argument("--train_flags", default="", help='More scripts/train.py flags for every run ("--a 1 --b").')
    parser.add_argument(
        "--peers", nargs="*", choices=list(PEERS), default=list(PEERS), help="Peers to train; none: meli-hf only."
    )
    args = parser.parse_args()

    data = {split: read_split(Path(args.data_dir) / f"{split}.csv.gz") for split in ("train", "validation", "test")}
    vectors = f"  word vectors: {args.word_vectors}" if args.word_vectors else ""
    print(f"data: {args.data_dir}  rows: { {split: len(d[0]) for split, d in data.items()} }{vectors}", flush=True)
    results = {}
    runs = {run_name(model, seed): (model, seed) for model in args.models for seed in args.seeds}
    folders = {run: Path(args.output_dir) / run for run in runs}
    for run, (model, seed) in runs.items():
        results[f"meli-hf {run}"] = run_meli(
            model, seed, args.data_dir, folders[run], args.reuse, args.word_vectors, shlex.split(args.train_flags)
        )
    if len(runs) > 1:
        train_seconds = sum(results[f"meli-hf {run}"]["train_seconds"] for run in runs)
        results[f"meli-hf {'+'.join(runs)}"] = run_ensemble(list(folders.values()), data, train_seconds)
    for peer in args.peers:
        name, run = PEERS[peer]
        results[name] = run(data)

    width = max([len("model"), *map(len, results)])
    header = (
        f"{'val bal.acc':>11} {'test bal.acc':>12} {'test acc':>9} {'test F1':>8} {'train time':>11} {'process':>8}"
    )
    print(f"{'model':{width}} {header}")
    for name, result in results.items():
        validation, test = result["validation"], result["test"]
        process = f"{result['process_seconds']:7.0f}s" if result.get("process_seconds") else f"{'-':>8}"
        print(
            f"{name:{width}} {validation['balanced_accuracy']:11.4f} {test['balanced_accuracy']:12.4f}"
            f" {test['accuracy']:9.4f} {test['macro_f1']:8.4f} {result['train_seconds']:10.0f}s {process}"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
