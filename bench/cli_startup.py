#!/usr/bin/env python
"""Startup benchmark: wall time of `scripts/train.py --help` and `scripts/predict.py --help` (answered from
scripts/argument_help.json) against building the live parsers they record, and of `import meli_hf`.

    python bench/cli_startup.py --repeats 5

Each measurement is a fresh process; the table shows the median and the range over the repeats.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIVE_TRAIN_HELP = (
    "from meli_hf.training_args import training_argument_parser\ntraining_argument_parser().format_help()"
)
LIVE_PREDICT_HELP = (
    f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); sys.argv = ['predict.py']\n"
    "from predict import argument_parser; argument_parser().format_help()"
)
COMMANDS = {
    "scripts/train.py --help": ["scripts/train.py", "--help"],
    "live train.py parser, format_help()": ["-c", LIVE_TRAIN_HELP],
    "scripts/predict.py --help": ["scripts/predict.py", "--help"],
    "live predict.py parser, format_help()": ["-c", LIVE_PREDICT_HELP],
    "import meli_hf": ["-c", "import meli_hf"],
}


def seconds(arguments: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="Runs of each command (default: 5).")
    args = parser.parse_args()
    print("| command | median s | range s |\n|---|---|---|")
    for name, arguments in COMMANDS.items():
        times = [seconds(arguments) for _ in range(args.repeats)]
        print(f"| `{name}` | {statistics.median(times):.2f} | {min(times):.2f}-{max(times):.2f} |", flush=True)


if __name__ == "__main__":
    main()
