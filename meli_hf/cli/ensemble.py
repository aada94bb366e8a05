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

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import MeliError, one_line_parser_errors
from ..files import check_output_spares_inputs
from ..inference.ensemble_file import paths_read
from . import positive_int, user_errors


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
        import transformers

        from ..data.loading import load_meli
        from ..data.sample import sample_dir
        from ..evaluation.ensemble import build_ensemble, write_ensemble_file

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
