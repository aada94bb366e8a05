#!/usr/bin/env python
"""Prediction benchmark: titles per second, peak RSS and cold start of `scripts/predict.py`'s predictor on real
titles (checkpoints, torch; ONNX copies of scripts/compact.py, onnxruntime), with fastText's `predict` (`lr=0.5,
wordNgrams=2`, trained in the same run on the same training titles) side by side.

    python bench/predict_speed.py --checkpoints outputs/mlp-real outputs/mlp-real-onnx \\
        --data_dir ../shared/data/meli2019-es --titles 100000

Each measurement runs in a fresh process; cold start is process start to the first prediction.
"""

import argparse
import csv
import gzip
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT_START = time.perf_counter()
WORDS = re.compile(r"\w+")


def read_titles(path: Path, limit: int) -> list[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [(row["title"].strip(), row["category"]) for row in csv.DictReader(fh)]
    return (rows * (limit // len(rows) + 1))[:limit]


def fasttext_line(title: str) -> str:
    return " ".join(WORDS.findall(title.lower()))


def measure_predictor(checkpoint: str, titles_file: str, batch_size: int) -> None:
    """Child: cold start and throughput of predict.py's predictor on the titles in `titles_file` (one a line)."""
    from meli_hf.inference.loading import load_predictor

    titles = Path(titles_file).read_text(encoding="utf-8").splitlines()
    predictor = load_predictor([checkpoint], batch_size=batch_size)
    predictor.predict(titles[:1])
    cold_start = time.perf_counter() - SCRIPT_START
    start = time.perf_counter()
    predictions = predictor.predict(titles)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "cold_start": cold_start,
                "seconds": seconds,
                "titles": len(predictions),
                "labels": [p[0]["label"] if p else "" for p in predictions],
                "peak_rss_gib": _peak_rss(),
            }
        )
    )


def measure_fasttext(model_file: str, titles_file: str) -> None:
    """Child: the same for a fastText model (its `predict` over the list of titles, one call)."""
    import fasttext

    titles = [fasttext_line(t) for t in Path(titles_file).read_text(encoding="utf-8").splitlines()]
    model = fasttext.load_model(model_file)
    model.predict(titles[:1])
    cold_start = time.perf_counter() - SCRIPT_START
    start = time.perf_counter()
    labels, _ = model.predict(titles, k=1)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "cold_start": cold_start,
                "seconds": seconds,
                "titles": len(labels),
                "labels": [lab[0].removeprefix("__label__") if lab else "" for lab in labels],
                "peak_rss_gib": _peak_rss(),
            }
        )
    )


def _peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _child(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"measurement {args[0]} {args[1]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", default=[], help="Trained checkpoint folders to measure.")
    parser.add_argument("--data_dir", default="../shared/data/meli2019-es", help="Challenge CSV folder.")
    parser.add_argument("--titles", type=int, default=100_000, help="Titles to classify (test titles, repeated).")
    parser.add_argument("--batch_size", type=int, default=1024, help="Predictor batch size.")
    parser.add_argument("--save_fasttext", help="Also keep the fastText model here (for bench/cli_startup.py).")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, model, titles_file = args.child
        if kind == "fasttext":
            measure_fasttext(model, titles_file)
        else:
            measure_predictor(model, titles_file, int(kind))
        return

    import fasttext

    data_dir = Path(args.data_dir)
    rows = read_titles(data_dir / "test.csv.gz", args.titles)
    with tempfile.TemporaryDirectory() as work:
        titles_file = Path(work) / "titles.txt"
        titles_file.write_text("\n".join(title for title, _ in rows) + "\n", encoding="utf-8")
        train_file = Path(work) / "train.txt"
        with gzip.open(data_dir / "train.csv.gz", "rt", encoding="utf-8") as fh, train_file.open("w") as out:
            for row in csv.DictReader(fh):
                out.write(f"__label__{row['category']} {fasttext_line(row['title'])}\n")
        start = time.perf_counter()
        model = fasttext.train_supervised(str(train_file), lr=0.5, epoch=10, wordNgrams=2, verbose=0)
        print(f"fastText trained in {time.perf_counter() - start:.0f} s (lr 0.5, word bigrams, 10 epochs)")
        model.save_model(str(Path(work) / "fasttext.bin"))
        if args.save_fasttext:
            model.save_model(args.save_fasttext)
        results = {"fastText": _child("fasttext", str(Path(work) / "fasttext.bin"), str(titles_file))}
        for checkpoint in args.checkpoints:
            results[Path(checkpoint).name] = _child(str(args.batch_size), checkpoint, str(titles_file))

    from sklearn.metrics import balanced_accuracy_score

    truth = [category for _, category in rows]
    print(f"{args.titles:,} titles, batch {args.batch_size}, 2 CPU cores")
    print(f"{'model':28} {'titles/s':>10} {'x fastText':>10} {'cold start':>11} {'peak RSS':>9} {'bal. acc.':>9}")
    fasttext_rate = results["fastText"]["titles"] / results["fastText"]["seconds"]
    for name, result in results.items():
        rate = result["titles"] / result["seconds"]
        print(
            f"{name:28} {rate:10,.0f} {rate / fasttext_rate:9.2f}x {result['cold_start']:10.2f}s"
            f" {result['peak_rss_gib']:8.2f}G {balanced_accuracy_score(truth, result['labels']):9.4f}"
        )


if __name__ == "__main__":
    main()
