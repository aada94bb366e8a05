"""Classify product titles with a trained checkpoint (MLP, CNN, LSTM or BETO), local or from the Hub, with an ONNX
copy of one (scripts/compact.py: read without torch), or with an ensemble of checkpoints trained on the same
categories.

    python scripts/predict.py --model outputs/mlp "Zapatillas Nike Air Talle 42" "Notebook Lenovo 15 pulgadas"
    python scripts/predict.py --model outputs/lstm --input titles.csv --output predictions.csv --top_k 3
    python scripts/predict.py --model outputs/lstm-onnx --input titles.csv --output predictions.csv   # no torch
    cat titles.txt | python scripts/predict.py --model USER/meli-beto --input -
    python scripts/predict.py --model outputs/cnn --input test.csv --evaluate       # needs a category column
    python scripts/predict.py --model outputs/mlp --model outputs/cnn --model outputs/lstm --input test.csv --evaluate

Output: one JSON line per title (or CSV by --output extension), input order kept, input columns carried through.
An --output file is written beside its target and renamed into place once complete: a failed run never truncates
it. A bad flag, file or record ends the run with one `error: ...` line.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from pathlib import Path

from ..errors import MeliDataError, one_line_parser_errors
from ..files import atomic_output, check_output_spares_inputs, is_readable_file
from ..inference.ensemble_file import paths_read
from ..inference.records import INPUT_FORMATS, PredictionWriter, batched, read_records
from . import add_checkpoint_arguments, positive_int, predictor_from_arguments, user_errors


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    one_line_parser_errors(parser)
    parser.add_argument("titles", nargs="*", help="Titles to classify (or use --input).")
    add_checkpoint_arguments(parser)
    parser.add_argument("--input", help="Text (a title a line), CSV or JSONL file (.gz too); - for standard input.")
    parser.add_argument("--input_format", choices=INPUT_FORMATS, help="Default: from the extension; stdin: text.")
    parser.add_argument("--title_column", default="title", help="Title column of CSV/JSONL input (default: title).")
    parser.add_argument(
        "--label_column", default="category", help="True category column, for --evaluate (default: category)."
    )
    parser.add_argument(
        "--output",
        help="Output file, .jsonl or .csv, replaced only once complete (a missing folder is created). "
        "Default: JSON lines on standard output.",
    )
    parser.add_argument(
        "--top_k", type=positive_int, default=1, help="Categories per title, with probabilities (default: 1)."
    )
    parser.add_argument("--batch_size", type=positive_int, default=256, help="Titles per forward pass (default: 256).")
    parser.add_argument("--evaluate", action="store_true", help="Print balanced accuracy, accuracy and macro-F1.")
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="With --evaluate (implied): write an evaluation report into DIR: per_category.csv, confusions.csv, "
        "per_group.csv, report.md and its pictures.",
    )
    parser.add_argument(
        "--group_by",
        metavar="FILE",
        help="With --report: a CSV of category,group to roll the report up by. Default: the first word of the "
        "category name.",
    )
    parser.add_argument("--debug", action="store_true", help="Show the traceback of an error (or MELI_HF_DEBUG=1).")
    return parser


def parse_args() -> argparse.Namespace:
    parser = argument_parser()
    args = parser.parse_args()
    if bool(args.titles) == bool(args.input):
        parser.error("give titles as arguments or --input FILE, not both and not neither")
    if args.input and args.input != "-" and not is_readable_file(args.input):
        parser.error(f"--input {args.input}: {'is a folder' if Path(args.input).is_dir() else 'file not found'}")
    reads = {
        "--model": paths_read(args.model),
        "--input": [args.input if args.input != "-" else None],
        "--group_by": [args.group_by],
    }
    if args.output:
        check_output_spares_inputs("--output", args.output, reads, replaces_folder=False)
    if args.report:
        check_output_spares_inputs("--report", args.report, reads, replaces_folder=True)
    if args.group_by and not args.report:
        parser.error("--group_by goes with --report DIR")
    if args.group_by and not is_readable_file(args.group_by):
        parser.error(f"--group_by {args.group_by}: file not found")
    if args.report:
        from ..evaluation.report import check_report_folder  # scoring and reports: only when asked for

        check_report_folder(args.report)  # before any prediction: a folder of other files is refused
    args.evaluate = args.evaluate or bool(args.report)
    return args


def predict(args: argparse.Namespace) -> None:
    if args.evaluate:  # only then: scoring imports `evaluate`, scikit-learn and `datasets`, a report matplotlib
        from ..evaluation.scoring import Evaluation
    if args.report:
        from ..evaluation.report import read_groups, write_report
    groups = read_groups(args.group_by) if args.group_by else None  # a bad file fails before any prediction
    predictor = predictor_from_arguments(args, args.batch_size)
    if args.titles:
        records = ((i, {args.title_column: title}) for i, title in enumerate(args.titles, start=1))
    else:
        records = read_records(args.input, args.input_format, args.title_column)
    source = args.input or "<arguments>"
    evaluation = Evaluation(predictor.labels) if args.evaluate else None
    top_k = min(args.top_k, len(predictor.labels))
    if top_k < args.top_k:
        print(
            f"warning: --top_k {args.top_k}: the model knows {top_k} categories; each title gets {top_k}",
            file=sys.stderr,
        )
    empty = unread = 0
    with atomic_output(args.output) if args.output else nullcontext(sys.stdout) as stream:
        as_csv = bool(args.output) and Path(args.output).suffix == ".csv"
        writer = PredictionWriter(stream, as_csv=as_csv, top_k=top_k, source=source)
        for batch in batched(records, args.batch_size):
            titles = [record[args.title_column] for _, record in batch]
            predicted, unknown_flags = predictor.predict_with_unknown_flags(titles, top_k=top_k)
            for (number, record), predictions, unknown in zip(batch, predicted, unknown_flags):
                notes = (
                    {"error": "empty title"} if not predictions else {"warning": "no known word"} if unknown else {}
                )
                writer.write(number, record, predictions, notes)
                empty += not predictions
                unread += unknown
                if not predictions:
                    print(f"warning: line {number}: empty title, no prediction", file=sys.stderr)
                elif evaluation is not None:
                    category = record.get(args.label_column)
                    if not isinstance(category, str) or not category.strip():
                        problem = (
                            "missing field" if category is None else f"expected a category name, got {category!r}"
                        )
                        raise MeliDataError(
                            source, number, args.label_column, f"{problem} (--evaluate; set --label_column)"
                        )
                    evaluation.add(
                        category, predictions[0]["label"], predictions[0]["score"], record[args.title_column]
                    )
    if empty:
        print(f"{empty} empty titles got no prediction", file=sys.stderr)
    if unread:
        print(
            f"{unread} titles hold no word the model knows (output field warning: no known word): their predictions "
            "are the model's prior, not a reading of the title",
            file=sys.stderr,
        )
    if evaluation is not None:
        scores = evaluation.scores()
        n = len(evaluation.references)
        print(" ".join(f"{name}={value:.4f}" for name, value in scores.items()) + f" n={n}", file=sys.stderr)
        if evaluation.unknown:
            print(
                f"warning: {evaluation.unknown_rows} of {n} rows belong to {len(evaluation.unknown)} categories the "
                f"model does not know (e.g. {', '.join(sorted(evaluation.unknown)[:3])}); they count as errors of "
                "their categories",
                file=sys.stderr,
            )
        if args.report:
            path = write_report(evaluation, scores, args.report, args.model, source, groups)
            print(f"report: {path}", file=sys.stderr)


def main() -> None:
    with user_errors(debug="--debug" in sys.argv):
        args = parse_args()
    try:
        with user_errors(debug=args.debug):
            predict(args)
    except SystemExit:
        if args.output:  # the output file is replaced only by a complete run
            print(f"{args.output} was not written (an existing file is left as it was)", file=sys.stderr)
        raise


if __name__ == "__main__":
    main()
