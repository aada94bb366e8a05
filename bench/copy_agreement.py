#!/usr/bin/env python
"""Exactness of a serving copy: how often its top-1 answer is its checkpoint's, and both balanced accuracies, on the
titles of a CSV split, in one run.

    python bench/copy_agreement.py --checkpoint outputs/best/lstm --copy outputs/best/lstm-onnx \\
        --input ../shared/data/meli2019-es/test.csv.gz

The target of an ONNX copy (int8 tables): top-1 agreement of at least 99.9% and balanced accuracy within 0.05
points of the float32 checkpoint.
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.metrics import balanced_accuracy_score  # noqa: E402

from meli_hf.files import read_csv, read_lines  # noqa: E402
from meli_hf.inference.loading import load_predictor  # noqa: E402


def top_labels(model: str, titles: list[str]) -> tuple[list[str], float]:
    predictor = load_predictor([model], batch_size=1024)
    start = time.perf_counter()
    answers = predictor.predict(titles)
    return [answer[0]["label"] if answer else "" for answer in answers], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="The checkpoint the copy was made of.")
    parser.add_argument("--copy", required=True, help="The copy (ONNX or --format torch).")
    parser.add_argument("--input", required=True, help="CSV split with title and category columns.")
    args = parser.parse_args()
    _, rows = read_csv(read_lines(args.input), args.input)
    pairs = [(row["title"], row["category"].strip()) for _, row in rows]
    titles, truth = [title for title, _ in pairs], [category for _, category in pairs]
    reference, reference_s = top_labels(args.checkpoint, titles)
    copied, copy_s = top_labels(args.copy, titles)
    agreement = sum(a == b for a, b in zip(reference, copied)) / len(titles)
    reference_score = balanced_accuracy_score(truth, reference)
    copy_score = balanced_accuracy_score(truth, copied)
    print(f"{len(titles):,} titles of {args.input}")
    print(f"checkpoint {args.checkpoint}: balanced accuracy {reference_score:.4f} ({reference_s:.1f} s)")
    print(f"copy {args.copy}: balanced accuracy {copy_score:.4f} ({copy_s:.1f} s)")
    print(
        f"top-1 agreement {100 * agreement:.3f}% ({sum(a != b for a, b in zip(reference, copied))} titles differ); "
        f"balanced accuracy {100 * (copy_score - reference_score):+.3f} points"
    )


if __name__ == "__main__":
    main()
