#!/usr/bin/env python
"""Training throughput: samples per second of `Trainer` against a plain PyTorch loop, same model, same batches,
same optimizer, in one process; then the Trainer with sparse embedding gradients (`--sparse_embeddings`, the
default of the baselines), `dataloader_num_workers`, `group_by_length` (`--train_sampling_strategy
group_by_length` in transformers 5) and `torch_compile` changed one at a time.

    python bench/training_throughput.py --data_dir ../shared/data/meli2019-es --models mlp lstm --steps 300

Both loops start from the same initial weights, draw shuffled batches of the real training split through the
project's `WordIdBatches` + `WordIdCollator`, and run fused AdamW with a linear schedule and gradient clipping at
1.0 (the Trainer's defaults); the Trainer rows are `MeliTrainer`, with dense embedding gradients unless a row says
sparse. The first `--warmup` steps of every run are not timed. On a shared CPU the speed
drifts between runs: `--repeats N` runs every loop N times, taking turns, and reports the median and the range.
"""

import argparse
import copy
import json
import statistics
import time
from functools import partial

import torch
from transformers import TrainerCallback, get_linear_schedule_with_warmup

from meli_hf.cli import keep_freed_memory_in_heap
from meli_hf.models.modeling_meli import MeliTfidfForSequenceClassification
from meli_hf.training.arguments import (
    DataTrainingArguments,
    MeliTrainingArguments,
    ModelArguments,
    model_training_defaults,
)
from meli_hf.training.builders import build_collator, build_model
from meli_hf.training.run import fit_idf, load_data, new_tokenizer, prepare_datasets
from meli_hf.training.trainer import MeliTrainer


class StepClock(TrainerCallback):
    """Wall time from the end of step `warmup` to the end of the last step."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start = None
        self.end = None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def plain_loop(model, dataset, collator, args, steps: int, warmup: int) -> float:
    """The hand-written loop users have today; returns timed samples per second."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.per_device_train_batch_size, shuffle=True, collate_fn=collator
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.0, fused=True)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, steps)
    model.train()
    start = None
    step = 0
    while step < steps:
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step == warmup:
                start = time.perf_counter()
            if step == steps:
                break
    return (steps - warmup) * args.per_device_train_batch_size / (time.perf_counter() - start)


def trainer_loop(model, dataset, collator, args, steps: int, warmup: int) -> float:
    clock = StepClock(warmup)
    trainer = MeliTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[clock])
    trainer.train()
    return (steps - warmup) * args.per_device_train_batch_size / (clock.end - clock.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data/meli2019-es", help="Course JSONL or challenge CSV.")
    parser.add_argument("--models", nargs="+", default=["mlp", "lstm"], help="Baselines to measure.")
    parser.add_argument("--steps", type=int, default=300, help="Optimizer steps per run.")
    parser.add_argument("--warmup", type=int, default=30, help="Untimed first steps of each run.")
    parser.add_argument("--batch_size", type=int, default=256, help="Training batch size.")
    parser.add_argument("--repeats", type=int, default=1, help="Runs of every loop, taken in turn; median reported.")
    parser.add_argument(
        "--variants",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also measure the Trainer with num_workers / group_by_length / torch_compile.",
    )
    parser.add_argument(
        "--keep_freed_memory",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Apply scripts/train.py's malloc setting (keep_freed_memory_in_heap) first.",
    )
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: must be at least 1.")

    if args.keep_freed_memory:
        keep_freed_memory_in_heap()
    data_args = DataTrainingArguments(data_dir=args.data_dir)
    dataset, data_dir = load_data(data_args, seed=42)
    id2label = dict(enumerate(dataset["train"].features["label"].names))
    tokenizer = new_tokenizer(ModelArguments(model="mlp"), data_args, dataset, data_dir)
    print(
        f"data: {data_dir}  train rows: {len(dataset['train']):,}  labels: {len(id2label)}  "
        f"torch threads: {torch.get_num_threads()}  CPU kernels: {torch.backends.cpu.get_cpu_capability()}  "
        f"keep_freed_memory_in_heap: {args.keep_freed_memory}"
    )

    def training_args(model: str, **overrides) -> MeliTrainingArguments:
        # Shuffled batches as in the plain loop, also for the LSTM, whose training default groups them by length.
        overrides = {"train_sampling_strategy": "random", "sparse_embeddings": False} | overrides
        return MeliTrainingArguments(
            **model_training_defaults(model)
            | dict(
                output_dir="/tmp/meli-throughput",
                max_steps=args.steps,
                per_device_train_batch_size=args.batch_size,
                eval_strategy="no",
                save_strategy="no",
                logging_strategy="no",
                load_best_model_at_end=False,
                disable_tqdm=True,
                use_cpu=True,
                lr_scheduler_type="linear",
                remove_unused_columns=False,
            )
            | overrides
        )

    results = []
    for model_name in args.models:
        initial = build_model(model_name, tokenizer, id2label, ModelArguments(model=model_name).architecture())
        train = prepare_datasets(dataset, tokenizer, model_name, 64, training_args(model_name))["train"]
        if isinstance(initial, MeliTfidfForSequenceClassification):
            fit_idf(initial, train)  # as a run does: its kept features decide the weight matrix
        collator = build_collator(model_name, tokenizer)
        variants = {"Trainer": {}, "Trainer, sparse embeddings": {"sparse_embeddings": True}}
        if args.variants:
            variants |= {
                "Trainer, dataloader_num_workers=1": {"dataloader_num_workers": 1},
                "Trainer, group_by_length": {"train_sampling_strategy": "group_by_length"},
                "Trainer, torch_compile": {"torch_compile": True},
            }
        loops = {"plain PyTorch loop": partial(plain_loop, args=training_args(model_name))}
        loops |= {name: partial(trainer_loop, args=training_args(model_name, **o)) for name, o in variants.items()}
        speeds = {name: [] for name in loops}
        for _ in range(args.repeats):
            for name, loop in loops.items():
                model = copy.deepcopy(initial)
                speeds[name].append(loop(model, train, collator, steps=args.steps, warmup=args.warmup))
        plain = statistics.median(speeds["plain PyTorch loop"])
        for name, runs in speeds.items():
            speed = statistics.median(runs)
            ratio = speed / plain
            spread = f"  ({min(runs):,.0f}-{max(runs):,.0f})" if len(runs) > 1 else ""
            results.append(
                {"model": model_name, "run": name, "samples_per_second": speed, "of_plain": ratio, "runs": runs}
            )
            print(f"{model_name:5} {name:38} {speed:9,.0f} samples/s  {ratio:5.2f} x plain{spread}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
