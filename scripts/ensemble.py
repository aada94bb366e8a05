#!/usr/bin/env python
"""Pick an ensemble of trained checkpoints by forward selection on the validation split, and write it to a file that
`predict.py --model` and `train.py --teacher` take like one checkpoint.

    python scripts/ensemble.py --candidates outputs/lstm-real outputs/mlp-real outputs/tfidf-real \\
        --data_dir ../shared/data/meli2019-es --output outputs/ensemble.json
    python scripts/predict.py --model outputs/ensemble.json --input titles.txt
    python scripts/train.py --model mlp --data_dir ../shared/data/meli2019-es --teacher outputs/ensemble.json

Starting from the best candidate alone, the candidate whose averaged probabilities raise validation balanced accuracy
most is added, one at a time, until none does. The file lists the members, each step, and the validation and test
scores of every candidate and of the ensemble. It is replaced only once complete.
"""

import argparse
import sys
from pathlib import Path

from argument_help import print_recorded_help

if __name__ == "__main__" and print_recorded_help("ensemble", sys.argv[1:]):
    sys.exit()  # the help, from the recorded parser: no torch or transformers to import

import transformers

from meli_hf.cli import positive_int, user_errors
from meli_hf.data.loading import load_meli
from meli_hf.data.sample import sample_dir
from meli_hf.errors import MeliError, one_line_parser_errors
from meli_hf.evaluation.ensemble import build_ensemble, write_ensemble_file
from meli_hf.files import check_output_spares_inputs
from meli_hf.inference.predictor import paths_read


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    one_line_parser_errors(parser)
    parser.add_argument(
        "--candidates", nargs="+", required=True, metavar="CKPT", help="Checkpoint folders or Hub ids to pick from."
    )
    parser.add_argument(
        "--data_dir", help="Folder with the validation (and test) split. Default: the bundled synthetic sample."
    )
    parser.add_argument(
        "--output", default="outputs/ensemble.json", help="Ensemble file to write (default: outputs/ensemble.json)."
    )
    parser.add_argument("--batch_size", type=positive_int, default=512, help="Titles per forward pass (default: 512).")
    parser.add_argument("--debug", action="store_true", help="Show the traceback of an error (or MELI_HF_DEBUG=1).")
    return parser


def main() -> None:
    with user_errors(debug="--debug" in sys.argv):
        args = argument_parser().parse_args()
        if Path(args.output).suffix != ".json":
            raise MeliError(f"--output {args.output}: an ensemble file ends in .json")
        reads = {"--candidates": paths_read(args.candidates), "--data_dir": [args.data_dir]}
        check_output_spares_inputs("--output", args.output, reads, replaces_folder=False)
        data_dir = Path(args.data_dir) if args.data_dir else sample_dir()
        transformers.utils.logging.disable_progress_bar()  # one line per event: no bar per checkpoint loaded
        dataset = load_meli(data_dir)
        if "validation" not in dataset:
            raise MeliError(f"--data_dir {data_dir}: no validation split to select on")
        ensemble = build_ensemble(args.candidates, dataset["validation"], dataset.get("test"), args.batch_size)
        write_ensemble_file(ensemble | {"data_dir": str(data_dir.resolve())}, args.output)
    for split, scores in ensemble["scores"].items():
        rows = scores["candidates"] | {f"ensemble of {len(ensemble['members'])}": scores["ensemble"]}
        for name, score in rows.items():
            print(f"{split} {name}: balanced_accuracy={score['balanced_accuracy']:.4f}")
    print(f"members: {' '.join(ensemble['members'])}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
