#!/usr/bin/env python
"""Hyperparameter-search benchmark: `scripts/train.py --hp_search optuna` for one model on a subset of the real
MeLi sample, against the model's hand-tuned defaults and fastText on the same rows, in one run.

    python bench/hp_search.py --data_dir ../shared/data/meli2019-es --model mlp --max_train_samples 100000 \
        --trials 20 --output_dir outputs/hp_search

Three runs, one after another (each uses both cores):
1. `scripts/train.py --model MODEL --max_train_samples N` with the defaults, into OUTPUT_DIR/defaults;
2. `scripts/train.py ... --hp_search optuna --hp_trials TRIALS --hp_retrain_best true` into OUTPUT_DIR/search
   (its best run is trained again into OUTPUT_DIR/search/best, which scores the test split);
3. fastText supervised with the anchor settings (`lr=0.5, wordNgrams=2, epoch=10, dim=100`) on the same training
   rows (the subset `load_meli` draws with the same seed).
It prints validation and test balanced accuracy and wall time of each, the best trial's arguments and the search's
trial counts; the JSON of all of it ends the output.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from quality import SPLITS, run_fasttext

from meli_hf.data.loading import load_meli

ROOT = Path(__file__).resolve().parents[1]


def train(flags: list[str], folder: Path) -> float:
    """`scripts/train.py FLAGS --output_dir folder`; its wall time in seconds."""
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), *flags, "--output_dir", str(folder)]
    command += ["--disable_tqdm", "true", "--overwrite_output_dir", "true"]
    print("running:", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_scores(folder: Path) -> dict:
    metrics = json.loads((folder / "all_results.json").read_text())
    return {split: metrics[f"{prefix}_balanced_accuracy"] for split, prefix in SPLITS.items()}


def run_fasttext_anchor(data_dir: str, max_train_samples: int) -> dict:
    """The fastText anchor (`lr=0.5, dim=100`) on the training rows a meli-hf run with `--max_train_samples` sees:
    its training seconds and validation and test balanced accuracy."""
    dataset = load_meli(data_dir, max_rows={"train": max_train_samples})
    names = dataset["train"].features["label"].names
    data = {split: (list(d["title"]), [names[label] for label in d["label"]]) for split, d in dataset.items()}
    result = run_fasttext(data, dim=100)
    return {"seconds": result["train_seconds"]} | {split: result[split]["balanced_accuracy"] for split in SPLITS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data/meli2019-es", help="Challenge CSV folder.")
    parser.add_argument("--model", default="mlp", help="The meli-hf model to search.")
    parser.add_argument("--max_train_samples", type=int, default=100_000, help="Training rows of every run.")
    parser.add_argument("--trials", type=int, default=20, help="Trials of the search.")
    parser.add_argument("--output_dir", default="outputs/hp_search", help="Where the runs are written.")
    args = parser.parse_args()

    output_dir = Path(args.output_dir)
    common = ["--model", args.model, "--data_dir", args.data_dir, "--max_train_samples", str(args.max_train_samples)]
    results = {"defaults": {"seconds": train(common, output_dir / "defaults")}}
    results["defaults"] |= run_scores(output_dir / "defaults")

    search_flags = ["--hp_search", "optuna", "--hp_trials", str(args.trials), "--hp_retrain_best", "true"]
    seconds = train(common + search_flags, output_dir / "search")
    summary = json.loads((output_dir / "search" / "hp_search.json").read_text())
    results["search"] = {"seconds": seconds, "search_seconds": summary["seconds"], "best_trial": summary["best_trial"]}
    results["search"] |= {"best_trial_validation": summary["best_score"], "arguments": summary["best_arguments"]}
    states = [trial["state"] for trial in summary["trials"]]
    results["search"] |= {state: states.count(state) for state in sorted(set(states))}
    results["best run"] = run_scores(output_dir / "search" / "best")
    results["fastText"] = run_fasttext_anchor(args.data_dir, args.max_train_samples)

    print(f"data: {args.data_dir}, {args.max_train_samples} training rows; model {args.model}")
    print(f"{'run':<32} {'val bal.acc':>11} {'test bal.acc':>12} {'wall time':>10}")
    rows = {
        f"{args.model}, hand-tuned defaults": (results["defaults"], results["defaults"]["seconds"]),
        f"{args.model}, best of {len(states)} trials": (results["best run"], results["search"]["seconds"]),
        "fastText lr=0.5 wordNgrams=2": (results["fastText"], results["fastText"]["seconds"]),
    }
    for name, (result, wall) in rows.items():
        print(f"{name:<32} {result['validation']:11.4f} {result['test']:12.4f} {wall:9.0f}s")
    counts = ", ".join(f"{n} {state}" for state, n in results["search"].items() if state in set(states))
    print(f"search: {counts}; {summary['seconds']:.0f} s of trials; best trial {summary['best_trial']}:")
    flags = {
        name: " ".join(map(str, v)) if isinstance(v, list) else v for name, v in summary["best_arguments"].items()
    }
    print("  " + " ".join(f"--{name} {value}" for name, value in flags.items()))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
