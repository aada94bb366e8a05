"""Write a compact serving copy of a trained MLP, CNN or LSTM checkpoint: its word embeddings and its linear part
(`--linear_bigram_buckets`) stored as int8 with one float scale per row, about a quarter of the size.

    python scripts/compact.py --model outputs/best/lstm-max-product-numbers --output outputs/best/lstm-int8
    python scripts/predict.py --model outputs/best/lstm-int8 --input test.csv.gz --evaluate   # measure the copy

The copy loads with the Auto classes like any checkpoint and predicts; it does not train. --output must be a new
folder; it is written beside its place and renamed into place once complete.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import one_line_parser_errors
from . import user_errors


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    one_line_parser_errors(parser)
    parser.add_argument("--model", required=True, help="Checkpoint folder of an mlp, cnn or lstm run.")
    parser.add_argument("--output", required=True, help="New folder for the compact copy.")
    parser.add_argument("--debug", action="store_true", help="Show the traceback of an error (or MELI_HF_DEBUG=1).")
    return parser


def main() -> None:
    with user_errors(debug="--debug" in sys.argv):
        args = argument_parser().parse_args()
        import transformers

        from ..inference.compact import compact_checkpoint

        transformers.utils.logging.disable_progress_bar()
        before, after = compact_checkpoint(args.model, args.output)
    print(f"wrote {args.output}: weights {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
