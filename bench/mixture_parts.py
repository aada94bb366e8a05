#!/usr/bin/env python
"""Balanced accuracy of each part of a `--linear_combination mixture` checkpoint (its network, its linear n-gram
part) and of the mixture they make, on one CSV split: how much the linear part adds, and whether the two parts make
the same mistakes (the mixture gains little over its network when they do).

    python bench/mixture_parts.py --model outputs/best/lstm-max-mixture \\
        --input ../shared/data/meli2019-es/validation.csv.gz
"""

import argparse

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import meli_hf  # noqa: F401  (registers the Auto classes)
from meli_hf.io import read_csv, read_lines
from meli_hf.metrics import ClassificationMetrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a checkpoint folder trained with a mixture")
    parser.add_argument("--input", required=True, help="a CSV file with title and category columns")
    parser.add_argument("--batch_size", type=int, default=1024)
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    if getattr(model.config, "linear_combination", None) != "mixture" or not model.config.linear_bigram_buckets:
        parser.error(f"--model {args.model}: not trained with --linear_combination mixture")
    _, rows = read_csv(read_lines(args.input), args.input)
    titles, categories = zip(*((row["title"], row["category"].strip()) for _, row in rows))
    if unknown := set(categories) - set(model.config.label2id):
        parser.error(f"--input {args.input}: {len(unknown)} categories the model was not trained on")
    labels = np.array([model.config.label2id[category] for category in categories])

    predictions = {"network": [], "linear part": [], "mixture": []}
    with torch.inference_mode():
        for start in range(0, len(titles), args.batch_size):
            inputs = tokenizer(
                list(titles[start : start + args.batch_size]), padding=True, truncation=True, return_tensors="pt"
            )
            ids, mask = inputs["input_ids"], inputs["attention_mask"]
            network = model.classifier(model.encoder(model.embeddings(ids), mask, ids))
            predictions["network"].append(network.argmax(-1))
            predictions["linear part"].append(model.linear_ngrams(ids, mask).argmax(-1))
            predictions["mixture"].append(model(input_ids=ids, attention_mask=mask).logits.argmax(-1))
    metrics = ClassificationMetrics()
    print(f"{args.model} on {args.input} ({len(titles)} titles)")
    for part, batches in predictions.items():
        scores = metrics.scores(torch.cat(batches).numpy(), labels)
        print(f"{part}: balanced_accuracy={scores['balanced_accuracy']:.4f} accuracy={scores['accuracy']:.4f}")


if __name__ == "__main__":
    main()
