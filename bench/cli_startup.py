#!/usr/bin/env python
"""Startup benchmark: wall time of `scripts/train.py --help` and `scripts/predict.py --help` (live parsers) beside
`import torch, transformers` and `from transformers import TrainingArguments` (the floor of train.py's parser, whose
groups extend it), of `import meli_hf`, of `scripts/predict.py` on one title (with --model, given once per checkpoint
or ONNX copy), and of fastText loading a model and answering one title (with --fasttext_model, such as the one
`bench/predict_speed.py --save_fasttext` writes).

    python bench/cli_startup.py --repeats 5 --model outputs/best/lstm-int8 --model outputs/best/lstm-onnx \\
        --fasttext_model outputs/fasttext.bin

Each measurement is a fresh process; the commands take turns within each repeat, so that a machine that slows down
or speeds up during the run weighs on all of them alike. The table shows the median and the range over the repeats.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "import torch, transformers": ["-c", "import torch, transformers"],
    "from transformers import TrainingArguments": ["-c", "from transformers import TrainingArguments"],
    "import meli_hf": ["-c", "import meli_hf"],
    "scripts/train.py --help": ["scripts/train.py", "--help"],
    "scripts/predict.py --help": ["scripts/predict.py", "--help"],
}


def seconds(arguments: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="Runs of each command (default: 5).")
    parser.add_argument(
        "--model", action="append", default=[], help="A checkpoint: also time scripts/predict.py on one title with it."
    )
    parser.add_argument("--fasttext_model", help="A fastText .bin: also time its load_model and one predict.")
    args = parser.parse_args()
    commands = dict(COMMANDS)
    for model in args.model:
        commands[f"scripts/predict.py --model {model} TITLE"] = [
            "scripts/predict.py",
            "--model",
            model,
            "Zapatillas Nike Air Talle 42",
        ]
    if args.fasttext_model:
        load_and_predict = (
            f"import fasttext; fasttext.load_model({args.fasttext_model!r}).predict('zapatillas nike air talle 42')"
        )
        commands["fastText load_model + predict TITLE"] = ["-c", load_and_predict]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, arguments in commands.items():
            times[name].append(seconds(arguments))
    print("| command | median s | range s |\n|---|---|---|")
    for name, measured in times.items():
        print(f"| `{name}` | {statistics.median(measured):.2f} | {min(measured):.2f}-{max(measured):.2f} |")
    floor = statistics.median(times["import torch, transformers"])
    for name in ("scripts/train.py --help", "from transformers import TrainingArguments"):
        print(f"\n`{name}` / `import torch, transformers`: {statistics.median(times[name]) / floor:.2f}x (medians)")


if __name__ == "__main__":
    main()
