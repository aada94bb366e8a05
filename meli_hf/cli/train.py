"""Train an MLP, CNN, LSTM or BETO title classifier on MeLi 2019 data.

    python scripts/train.py --model mlp                                   # bundled sample
    python scripts/train.py --model lstm --data_dir ../shared/data/meli2019-es
    accelerate launch --config_file accelerate_config.yaml scripts/train.py --model cnn
    python scripts/train.py run.json        # or run.yaml: the same arguments as a file
    python scripts/train.py --model mlp --hp_search optuna --hp_trials 20   # search; writes best_run.json

Every `transformers.TrainingArguments` flag works too (`--optim`, `--weight_decay`, `--report_to mlflow`, ...).
A bad flag, file or setting ends the run with one `error: ...` line; MELI_HF_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import logging
import os
import sys

from ..training.parsing import parse_training_arguments, parse_training_file
from . import keep_freed_memory_in_heap, user_errors

logger = logging.getLogger("meli_hf")


def main() -> None:
    with user_errors():
        if len(sys.argv) == 2 and sys.argv[1].endswith((".json", ".yaml", ".yml")):
            model_args, data_args, training_args, search_args = parse_training_file(sys.argv[1])
        else:
            model_args, data_args, training_args, search_args = parse_training_arguments()
        # Imported once the flags are good: `--help` and a bad flag answer without the data and model stack.
        import datasets
        import transformers

        from ..training.run import run_training
        from ..training.search import run_hp_search
        from ..training.tracking import mlflow_store

        logging.basicConfig(
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
            handlers=[logging.StreamHandler(sys.stdout)],
        )
        # As transformers' examples: the main process logs at INFO unless --log_level says otherwise, the others at
        # --log_level_replica (WARNING).
        if training_args.should_log:
            transformers.utils.logging.set_verbosity_info()
        level = training_args.get_process_log_level()
        logger.setLevel(level)
        datasets.utils.logging.set_verbosity(level)
        datasets.utils.logging.disable_propagation()  # datasets has its own handler: each line once
        transformers.utils.logging.set_verbosity(level)
        transformers.utils.logging.enable_default_handler()
        transformers.utils.logging.enable_explicit_format()
        keep_freed_memory_in_heap()  # a process-wide allocator setting: the script's call, not the library's
        if "mlflow" in training_args.report_to:
            os.environ.setdefault("MLFLOW_TRACKING_URI", mlflow_store(training_args.output_dir))

        if search_args.hp_search:
            run_hp_search(model_args, data_args, training_args, search_args)
        else:
            run_training(model_args, data_args, training_args)


if __name__ == "__main__":
    main()
