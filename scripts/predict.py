#!/usr/bin/env python
"""Classify product titles with a trained checkpoint (MLP, CNN, LSTM or BETO), local or from the Hub, or with
an ensemble of checkpoints trained on the same categories.

    python scripts/predict.py --model outputs/mlp "Zapatillas Nike Air Talle 42" "Notebook Lenovo 15 pulgadas"
    python scripts/predict.py --model outputs/lstm --input titles.csv --output predictions.csv --top_k 3
    cat titles.txt | python scripts/predict.py --model USER/meli-beto --input -
    python scripts/predict.py --model outputs/cnn --input test.csv --evaluate       # needs a category column
    python scripts/predict.py --model outputs/mlp --model outputs/cnn --model outputs/lstm --input test.csv --evaluate

Output: one JSON line per title (or CSV by --output extension), input order kept, input columns carried through.
"""

import argparse
import sys
from contextlib import nullcontext
from pathlib import Path

import meli_hf  # noqa: F401  (registers the meli-hf architectures with the Auto classes)
from meli_hf.data import MeliDataError
from meli_hf.metrics import classification_metrics
from meli_hf.predict import INPUT_FORMATS, PredictionWriter, Predictor, batched, read_records


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("titles", nargs="*", help="Titles to classify (or use --input).")
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        help="Checkpoint folder or Hub id; given several times: an ensemble that averages their probabilities.",
    )
    parser.add_argument("--input", help="Text (a title a line), CSV or JSONL file (.gz too); - for standard input.")
    parser.add_argument("--input_format", choices=INPUT_FORMATS, help="Default: from the extension; stdin: text.")
    parser.add_argument("--title_column", default="title", help="Title column of CSV/JSONL input.")
    parser.add_argument("--label_column", default="category", help="True category column, for --evaluate.")
    parser.add_argument("--output", help="Output file, .jsonl or .csv. Default: JSON lines on standard output.")
    parser.add_argument("--top_k", type=int, default=1, help="Categories per title, with probabilities.")
    parser.add_argument("--batch_size", type=int, default=256, help="Titles per forward pass.")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... Default: a GPU when present, else the CPU.")
    parser.add_argument("--evaluate", action="store_true", help="Print balanced accuracy, accuracy and macro-F1.")
    parser.add_argument("--trust_remote_code", action="store_true", help="Load architectures saved with the model.")
    args = parser.parse_args()
    if bool(args.titles) == bool(args.input):
        parser.error("give titles as arguments or --input FILE, not both and not neither")
    if args.top_k < 1:
        parser.error("--top_k must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    try:
        predictor = Predictor(
            args.model, device=args.device, batch_size=args.batch_size, trust_remote_code=args.trust_remote_code
        )
    except ValueError as err:
        sys.exit(f"error: {err}")
    if args.titles:
        records = ((i, {args.title_column: title}) for i, title in enumerate(args.titles, start=1))
    else:
        records = read_records(args.input, args.input_format, args.title_column)
    output = open(args.output, "w", encoding="utf-8", newline="") if args.output else nullcontext(sys.stdout)
    references, predicted, empty = [], [], 0
    label2id = {label: i for i, label in enumerate(predictor.labels)}
    try:
        with output as stream:
            writer = PredictionWriter(
                stream, as_csv=bool(args.output) and Path(args.output).suffix == ".csv", top_k=args.top_k
            )
            for batch in batched(records, args.batch_size):
                titles = [str(record.get(args.title_column) or "") for _, record in batch]
                for (number, record), predictions in zip(batch, predictor.predict(titles, top_k=args.top_k)):
                    writer.write(record, predictions)
                    if not predictions:
                        empty += 1
                        print(f"warning: line {number}: empty title, no prediction", file=sys.stderr)
                    elif args.evaluate:
                        if args.label_column not in record:
                            raise MeliDataError(
                                args.input or "<arguments>",
                                number,
                                args.label_column,
                                "missing field (needed by --evaluate; set --label_column)",
                            )
                        # A category the model does not know counts as wrong (-1 is never predicted).
                        references.append(label2id.get(record[args.label_column], -1))
                        predicted.append(label2id[predictions[0]["label"]])
    except MeliDataError as err:
        sys.exit(f"error: {err}")
    if empty:
        print(f"{empty} empty titles got no prediction", file=sys.stderr)
    if args.evaluate:
        if not references:
            sys.exit("error: nothing to evaluate (no titles)")
        scores = classification_metrics(predicted, references)
        print(
            " ".join(f"{name}={value:.4f}" for name, value in scores.items()) + f" n={len(references)}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
