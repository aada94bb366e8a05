#!/usr/bin/env python
"""Data-layer benchmark: first load, cached load in a new process, peak RSS and one epoch into padded batches,
side by side with the course's reader (gzip JSONL parsed line by line through a shuffle-buffer IterableDataset).

    python bench/data_loading.py --data_dir ../shared/data/meli2019-es
    python scripts/sample.py --output_dir /tmp/meli-full --rows 4895280
    python bench/data_loading.py --data_dir /tmp/meli-full

Each measurement runs in its own process with its own `datasets` cache, so "first" and "cached" are what a user
sees on a new machine and on the next run.
"""

import argparse
import gzip
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH_SIZE = 256
SHUFFLE_BUFFER = 10_000


def load(data_dir: str) -> None:
    """Child process: time `load_meli`, print JSON with seconds and peak RSS."""
    start = time.perf_counter()
    from meli_hf.data.loading import load_meli

    imported = time.perf_counter()
    dataset = load_meli(data_dir)
    seconds = time.perf_counter() - imported
    rows = {split: len(d) for split, d in dataset.items()}
    print(
        json.dumps(
            {"seconds": seconds, "import_seconds": imported - start, "rows": rows, "peak_rss_gib": _peak_rss_gib()}
        )
    )


def trainer_epoch(data_dir: str) -> None:
    """Child process: one epoch of the Trainer's own train dataloader (shuffled, padded batches)."""
    from transformers import Trainer, TrainingArguments

    from meli_hf import MeliMLPConfig, MeliMLPForSequenceClassification
    from meli_hf.data.loading import load_meli
    from meli_hf.training.builders import build_collator, build_word_tokenizer
    from meli_hf.training.run import prepare_datasets

    dataset = load_meli(data_dir)
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=BATCH_SIZE,
        use_cpu=True,
        report_to="none",
        dataloader_num_workers=0,
        remove_unused_columns=False,  # word-id batches hold only the model's inputs
    )
    tokenizer = build_word_tokenizer(
        dataset,
        Path(data_dir),
        language="spanish",
        keep_numbers=None,
        max_vocabulary_words=50_000,
        min_word_frequency=2,
    )
    start = time.perf_counter()
    train = prepare_datasets(dataset, tokenizer, "mlp", 64, args)["train"]
    prepare = time.perf_counter() - start
    model = MeliMLPForSequenceClassification(MeliMLPConfig(vocab_size=len(tokenizer), embedding_dim=8, num_labels=2))
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=build_collator("mlp", tokenizer))
    start = time.perf_counter()
    rows = sum(len(batch["input_ids"]) for batch in trainer.get_train_dataloader())
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rows": rows, "tokenize_seconds": prepare, "peak_rss_gib": _peak_rss_gib()}))


def course_epoch(path: str) -> None:
    """Child process: the course's reader, re-implemented: gzip JSONL -> shuffle buffer -> padded tensor batches."""
    import torch
    from torch.utils.data import DataLoader, IterableDataset

    class MeliChallengeDataset(IterableDataset):
        def __init__(self, path: str, buffer_size: int):
            self.path, self.buffer_size = path, buffer_size

        def __iter__(self):
            buffer = []
            with gzip.open(self.path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    item = json.loads(line)
                    buffer.append({"data": torch.LongTensor(item["data"]), "target": item["target"]})
                    if len(buffer) == self.buffer_size:
                        random.shuffle(buffer)
                        yield from buffer
                        buffer = []
            random.shuffle(buffer)
            yield from buffer

    def pad_batch(batch):
        lengths = max(len(item["data"]) for item in batch)
        data = torch.zeros(len(batch), max(lengths, 1), dtype=torch.long)
        for i, item in enumerate(batch):
            data[i, : len(item["data"])] = item["data"]
        return {"data": data, "target": torch.LongTensor([item["target"] for item in batch])}

    start = time.perf_counter()
    loader = DataLoader(MeliChallengeDataset(path, SHUFFLE_BUFFER), batch_size=BATCH_SIZE, collate_fn=pad_batch)
    rows = sum(len(batch["target"]) for batch in loader)
    print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows, "peak_rss_gib": _peak_rss_gib()}))


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _child(function: str, argument: str, cache: str) -> dict:
    env = os.environ | {"HF_DATASETS_CACHE": cache, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [sys.executable, __file__, "--data_dir", argument, "--child", function],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"{function} on {argument} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="Course JSONL or challenge CSV folder.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        {"load": load, "trainer_epoch": trainer_epoch, "course_epoch": course_epoch}[args.child](args.data_dir)
        return

    with tempfile.TemporaryDirectory() as cache:
        first = _child("load", args.data_dir, cache)
        cached = _child("load", args.data_dir, cache)
        epoch = _child("trainer_epoch", args.data_dir, cache)
    print(f"data: {args.data_dir}  rows: {first['rows']}")
    print(f"first load (parse + Arrow cache):   {first['seconds']:8.1f} s   peak RSS {first['peak_rss_gib']:.2f} GiB")
    print(
        f"cached load, new process:           {cached['seconds']:8.2f} s   peak RSS {cached['peak_rss_gib']:.2f} GiB"
        f"   (after {cached['import_seconds']:.1f} s importing meli_hf, torch, transformers)"
    )
    if epoch["tokenize_seconds"] > 0.5:
        print(f"tokenize titles (first time):       {epoch['tokenize_seconds']:8.1f} s")
    print(
        f"one epoch, Trainer dataloader:      {epoch['seconds']:8.1f} s   peak RSS {epoch['peak_rss_gib']:.2f} GiB"
        f"   ({epoch['rows'] / epoch['seconds']:,.0f} rows/s, batch {BATCH_SIZE})"
    )
    course_train = Path(args.data_dir) / "spanish.train.jsonl.gz"
    if course_train.exists():
        course = _child("course_epoch", str(course_train), "")
        print(
            f"one epoch, course reader:           {course['seconds']:8.1f} s"
            f"   peak RSS {course['peak_rss_gib']:.2f} GiB"
            f"   ({course['rows'] / course['seconds']:,.0f} rows/s)"
        )
        print(f"speed-up of one epoch:              {course['seconds'] / epoch['seconds']:8.1f} x")


if __name__ == "__main__":
    main()
