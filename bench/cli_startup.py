#!/usr/bin/env python
"""Startup benchmark: wall time of `import meli_hf` beside `import torch, transformers`, of `scripts/predict.py` on
one title (with --model), and of `scripts/train.py --help` / `scripts/predict.py --help` (answered from
scripts/argument_help.json) against building the live parsers they record.

    python bench/cli_startup.py --repeats 5 --model outputs/best/lstm-int8

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
LIVE_TRAIN_HELP = (
    "from meli_hf.training.arguments import training_argument_parser\ntraining_argument_parser().format_help()"
)
LIVE_PREDICT_HELP = (
    f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); sys.argv = ['predict.py']\n"
    "from predict import argument_parser; argument_parser().format_help()"
)
COMMANDS = {
    "import torch, transformers": ["-c", "import torch, transformers"],
    "import meli_hf": ["-c", "import meli_hf"],
    "scripts/train.py --help": ["scripts/train.py", "--help"],
    "live train.py parser, format_help()": ["-c", LIVE_TRAIN_HELP],
    "scripts/predict.py --help": ["scripts/predict.py", "--help"],
    "live predict.py parser, format_help()": ["-c", LIVE_PREDICT_HELP],
}


def seconds(arguments: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="Runs of each command (default: 5).")
    parser.add_argument("--model", help="A checkpoint: also time scripts/predict.py on one title with it.")
    args = parser.parse_args()
    commands = dict(COMMANDS)
    if args.model:
        commands[f"scripts/predict.py --model {args.model} TITLE"] = [
            "scripts/predict.py",
            "--model",
            args.model,
            "Zapatillas Nike Air Talle 42",
        ]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, arguments in commands.items():
            times[name].append(seconds(arguments))
    print("| command | median s | range s |\n|---|---|---|")
    for name, measured in times.items():
        print(f"| `{name}` | {statistics.median(measured):.2f} | {min(measured):.2f}-{max(measured):.2f} |")
    ratio = statistics.median(times["import meli_hf"]) / statistics.median(times["import torch, transformers"])
    print(f"\n`import meli_hf` / `import torch, transformers`: {ratio:.2f}x (medians)")


if __name__ == "__main__":
    main()
