#!/usr/bin/env python
"""Balanced accuracy of each part of a checkpoint whose parts were trained apart (`--linear_combination mixture`
or `product`: its network, its linear n-gram part) and of both ways to combine them, on one CSV split: how much the
linear part adds, whether the two parts make the same mistakes (the combination gains little over its network when
they do), and which combination predicts better (both train alike, so either may be set in the config).

    python bench/mixture_parts.py --model outputs/best/lstm-max-mixture \\
        --input ../shared/data/meli2019-es/validation.csv.gz
"""

import argparse

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import meli_hf  # noqa: F401  (registers the Auto classes)
from meli_hf.evaluation.metrics import ClassificationMetrics
from meli_hf.files import read_csv, read_lines
from meli_hf.models.modeling_meli import PART_COMBINATIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a checkpoint folder trained with a mixture or product")
    parser.add_argument("--input", required=True, help="a CSV file with title and category columns")
    parser.add_argument("--batch_size", type=int, default=1024)
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(args.model, trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, trust_remote_code=False).eval()
    if not getattr(model.config, "trains_parts_apart", False):
        parser.error(f"--model {args.model}: not trained with --linear_combination mixture or product")
    _, rows = read_csv(read_lines(args.input), args.input)
    titles, categories = zip(*((row["title"], row["category"].strip()) for _, row in rows))
    if unknown := set(categories) - set(model.config.label2id):
        parser.error(f"--input {args.input}: {len(unknown)} categories the model was not trained on")
    labels = np.array([model.config.label2id[category] for category in categories])

    predictions = {"network": [], "linear part": [], **{combination: [] for combination in PART_COMBINATIONS}}
    with torch.inference_mode():
        for start in range(0, len(titles), args.batch_size):
            inputs = tokenizer(
                list(titles[start : start + args.batch_size]), padding=True, truncation=True, return_tensors="pt"
            )
            ids, mask = inputs["input_ids"], inputs["attention_mask"]
            parts = model(input_ids=ids, attention_mask=mask, output_part_logits=True).part_logits
            predictions["network"].append(parts[0].argmax(-1))
            predictions["linear part"].append(parts[1].argmax(-1))
            for combination, combine in PART_COMBINATIONS.items():
                predictions[combination].append(combine(parts).argmax(-1))
    metrics = ClassificationMetrics()
    print(f"{args.model} ({model.config.linear_combination}) on {args.input} ({len(titles)} titles)")
    for part, batches in predictions.items():
        scores = metrics.scores(torch.cat(batches).numpy(), labels)
        print(f"{part}: balanced_accuracy={scores['balanced_accuracy']:.4f} accuracy={scores['accuracy']:.4f}")


if __name__ == "__main__":
    main()
