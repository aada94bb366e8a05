#!/usr/bin/env python
"""Scale benchmark: one MLP epoch on a generated course-format dataset of the course's real size, as a new user
runs it (new `datasets` cache), then the evaluation of all validation and test rows; wall time and peak RSS.

    python bench/scale.py --data_dir /tmp/meli-full --rows 4895280

The data are written by `python scripts/sample.py` first when `--data_dir` holds none (4,895,280 train rows,
1,223,820 validation rows: the course's sizes). The run is `scripts/train.py --model mlp --num_train_epochs 1`
with its other defaults, no checkpoints and no evaluation during training; its peak RSS is the training process's.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="/tmp/meli-full", help="Course-format folder (written if empty).")
    parser.add_argument("--rows", type=int, default=4_895_280, help="Training rows of the generated data.")
    parser.add_argument("--output_dir", default="outputs/scale", help="Where the MLP run is written.")
    args = parser.parse_args()

    data_dir = Path(args.data_dir)
    if not (data_dir / "spanish.train.jsonl.gz").is_file():
        start = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "meli_hf.cli.sample",
            "--output_dir",
            str(data_dir),
            "--rows",
            str(args.rows),
        ]
        subprocess.run(command, check=True, cwd=ROOT)
        print(f"generated {data_dir} in {time.perf_counter() - start:.0f} s", flush=True)

    with tempfile.TemporaryDirectory() as cache:
        command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--model", "mlp", "--data_dir", str(data_dir)]
        command += ["--output_dir", args.output_dir, "--num_train_epochs", "1", "--eval_strategy", "no"]
        command += ["--save_strategy", "no", "--load_best_model_at_end", "false", "--disable_tqdm", "true"]
        command += ["--overwrite_output_dir", "true"]  # a new measurement replaces the earlier one
        print("running:", " ".join(command), flush=True)
        start = time.perf_counter()
        env = {**os.environ, "HF_DATASETS_CACHE": cache}
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        wall = time.perf_counter() - start
    peak_rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    results = json.loads((Path(args.output_dir) / "all_results.json").read_text())
    train_samples = results["train_samples"]
    print(f"rows: train {train_samples:,}  validation {results['eval_samples']:,}  test {results['test_samples']:,}")
    print(f"wall time, process start to saved model: {wall:8.0f} s")
    print(
        f"one MLP epoch:                           {results['train_runtime']:8.0f} s"
        f"   ({results['train_samples_per_second']:,.0f} samples/s)"
    )
    print(
        f"evaluation of the validation rows:       {results['eval_runtime']:8.0f} s"
        f"   ({results['eval_samples_per_second']:,.0f} samples/s)"
    )
    print(
        f"load, tokenizer, model, test, save:      {wall - results['train_runtime'] - results['eval_runtime']:8.0f} s"
    )
    print(f"peak RSS of the training process:        {peak_rss_gib:8.2f} GiB")
    print(
        f"validation / test balanced accuracy:     {results['eval_balanced_accuracy']:.4f} / "
        f"{results['test_balanced_accuracy']:.4f}"
    )


if __name__ == "__main__":
    main()
