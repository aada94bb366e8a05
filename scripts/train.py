#!/usr/bin/env python
"""Train an MLP, CNN, LSTM or BETO title classifier on MeLi 2019 data.

    python scripts/train.py --model mlp                                   # bundled sample
    python scripts/train.py --model lstm --data_dir ../shared/data/meli2019-es
    accelerate launch --config_file accelerate_config.yaml scripts/train.py --model cnn
    python scripts/train.py run.json        # or run.yaml: the same arguments as a file

Every `transformers.TrainingArguments` flag works too (`--optim`, `--weight_decay`, `--report_to mlflow`, ...).
"""

import logging
import sys

import datasets
import transformers
from transformers import HfArgumentParser

from meli_hf.training import DataTrainingArguments, MeliTrainingArguments, ModelArguments, run_training

logger = logging.getLogger("meli_hf")


def main() -> None:
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, MeliTrainingArguments))
    if len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(sys.argv[1])
    elif len(sys.argv) == 2 and sys.argv[1].endswith((".yaml", ".yml")):
        model_args, data_args, training_args = parser.parse_yaml_file(sys.argv[1])
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses()

    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = logging.INFO if training_args.should_log else logging.WARNING
    logger.setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(logging.WARNING if not training_args.should_log else logging.INFO)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()

    run_training(model_args, data_args, training_args)


if __name__ == "__main__":
    main()
