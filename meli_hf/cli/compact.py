"""Write a serving copy of a trained MLP, CNN, LSTM or TF-IDF checkpoint.

    python scripts/compact.py --model outputs/lstm --output outputs/lstm-onnx
    python scripts/predict.py --model outputs/lstm-onnx --input test.csv.gz --evaluate   # measure the copy

--format onnx (the default): model.onnx, tokenizer.json and serving_config.json, which predict.py and serve.py read
with onnxruntime, tokenizers and numpy, without torch (README's slim install); the word embeddings and the linear part
(--linear_bigram_buckets) are int8 tables with one float scale per row, about a quarter of the checkpoint's size.
--format torch: a checkpoint with the same int8 tables that loads with the Auto classes (mlp, cnn, lstm).

A copy predicts; it does not train. --output must be a new folder; it is written beside its place and renamed into
place once complete.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import one_line_parser_errors
from . import user_errors


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    one_line_parser_errors(parser)
    parser.add_argument("--model", required=True, help="Checkpoint folder of an mlp, cnn, lstm or tfidf run.")
    parser.add_argument("--output", required=True, help="New folder for the copy.")
    parser.add_argument(
        "--format",
        choices=("onnx", "torch"),
        default="onnx",
        help="onnx (default): served without torch; torch: a checkpoint for the Auto classes and the Hub.",
    )
    parser.add_argument(
        "--float32_tables",
        action="store_true",
        help="Keep an ONNX copy's embeddings and linear part in float32 (four times the size; answers equal the "
        "checkpoint's to float precision).",
    )
    parser.add_argument("--debug", action="store_true", help="Show the traceback of an error (or MELI_HF_DEBUG=1).")
    return parser


def main() -> None:
    with user_errors(debug="--debug" in sys.argv):
        args = argument_parser().parse_args()
        import transformers

        from ..inference.compact import compact_checkpoint

        transformers.utils.logging.disable_progress_bar()
        before, after = compact_checkpoint(args.model, args.output, args.format, not args.float32_tables)
    print(f"wrote {args.output}: weights {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
