"""The argument groups of `scripts/train.py`, as in transformers' `run_classification.py`: `ModelArguments`,
`DataTrainingArguments` and `MeliTrainingArguments`, parsed by `HfArgumentParser`. Per-model defaults are applied
the parser way (`--model` first, then `parser.set_defaults`), so every dataclass holds real values and `--help`
shows them. Every value is checked in `__post_init__`, before any work: a value that would train a chance-level
model, or fail an hour in, is refused with one line naming the flag."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from transformers import TrainingArguments

from ..data.tokenization import MAX_VOCABULARY_WORDS, MIN_WORD_FREQUENCY, MODEL_MAX_LENGTH
from ..errors import MeliError
from ..files import is_checkpoint_folder, is_readable_file
from ..inference.ensemble_file import is_ensemble_file
from .registry import BETO, MODELS, architecture_fields, has_word_embeddings

# `--word_vectors none`: the embeddings start from random vectors.
NO_WORD_VECTORS = "none"
# The optimizers that update sparse gradients (`--sparse_embeddings`).
SPARSE_CAPABLE_OPTIMIZERS = ("adamw_torch", "adamw_torch_fused")


def require(condition: bool, flag: str, value, requirement: str) -> None:
    """Refuse a setting with one line naming the flag, the value given and what it must be."""
    if not condition:
        shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        raise MeliError(f"--{flag} {shown}: {requirement}")


def require_at_least_one(arguments, *names: str) -> None:
    """Counts and sizes: each named field, where set, is at least 1."""
    for name in names:
        value = getattr(arguments, name)
        require(value is None or value >= 1, name, value, "must be at least 1")


def optimizer_obstacle(optim) -> str | None:
    """Why `--optim` (a name or transformers' `OptimizerNames`) cannot take sparse gradients, if it cannot."""
    name = getattr(optim, "value", optim)
    if name in SPARSE_CAPABLE_OPTIMIZERS:
        return None
    return f"--optim {name} cannot update sparse gradients ({' and '.join(SPARSE_CAPABLE_OPTIMIZERS)} can)"


# Settings of the linear part that `--linear_bigram_buckets` adds, which mean nothing without it.
LINEAR_PART_SETTINGS = ("linear_logit_scale",)


def applies_to(name: str) -> str:
    """The `--model` values whose architecture has the field `name`."""
    return ", ".join(model for model in MODELS if name in architecture_fields(model))


@dataclass
class ModelArguments:
    """Which architecture to train and its shape."""

    _argument_group_name = "model arguments"

    model: str = field(default="mlp", metadata={"help": f"Architecture: one of {', '.join(MODELS)}."})
    model_name_or_path: str = field(
        default=BETO, metadata={"help": "For --model beto: pretrained checkpoint, a Hub id or a local folder."}
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "Run the Python code that a checkpoint ships (its config's auto_map): --model_name_or_path, "
            "--resume_from_checkpoint, --teacher. Without it such a checkpoint is refused."
        },
    )
    embedding_dim: int = field(
        default=300, metadata={"help": "Word-vector size (the file's with --word_vectors FILE)."}
    )
    word_vectors: str | None = field(
        default=None,
        metadata={
            "help": "mlp, cnn, lstm: the word vectors the embeddings start from: a word2vec text file (.txt/.gz/.bz2, "
            "e.g. SBW-vectors-300-min5.txt.gz), or none (random vectors). Default: vectors learnt from the "
            "training titles (fastText skip-gram, --embedding_dim dimensions), cached with the data and read back "
            "by the next run on the same data."
        },
    )
    freeze_embeddings: bool = field(default=False, metadata={"help": "Keep the word vectors fixed."})
    hidden_layers: list[int] = field(default_factory=lambda: [1024], metadata={"help": "Hidden layer sizes."})
    bigram_buckets: int | None = field(
        default=None,
        metadata={"help": "tfidf: word bigrams hashed into this many buckets of features beside the words."},
    )
    linear_bigram_buckets: int | None = field(
        default=None,
        metadata={
            "help": "mlp, cnn, lstm: a linear classifier over the title's words and its word bigrams hashed into this "
            "many buckets beside the network, each part trained on its own loss, the prediction their normalised "
            "product; 0: the network alone."
        },
    )
    linear_logit_scale: float | None = field(
        default=None,
        metadata={
            "help": "With --linear_bigram_buckets: the linear part's logits move this many times faster than the "
            "network's under Adam (default 10)."
        },
    )
    min_document_frequency: int | None = field(
        default=None,
        metadata={
            "help": "tfidf: drop features held by fewer training titles, scikit-learn's min_df (default 5; 1 keeps "
            "all)."
        },
    )
    dropout: float = field(default=0.3, metadata={"help": "Dropout probability (training only)."})
    filter_widths: list[int] = field(default_factory=lambda: [2, 3, 4], metadata={"help": "CNN filter widths."})
    num_filters: int = field(default=256, metadata={"help": "CNN filters per width."})
    lstm_hidden_size: int = field(default=512, metadata={"help": "LSTM hidden size per direction."})
    lstm_num_layers: int = field(default=1, metadata={"help": "Stacked LSTM layers."})
    bidirectional: bool = field(
        default=True, metadata={"help": "Read titles in both directions (--no_bidirectional: left to right only)."}
    )

    def __post_init__(self):
        if self.model not in MODELS:
            raise MeliError(f"--model {self.model!r} is unknown; choose one of {', '.join(MODELS)}.")
        if self.word_vectors not in (None, NO_WORD_VECTORS) and not is_readable_file(self.word_vectors):
            raise MeliError(f"--word_vectors {self.word_vectors}: file not found (or none: random vectors).")
        if self.word_vectors is not None and not has_word_embeddings(self.model):
            raise MeliError(f"--word_vectors: --model {self.model} has no word embeddings to load them into.")
        require(
            all(n >= 1 for n in self.hidden_layers), "hidden_layers", self.hidden_layers, "sizes must be at least 1"
        )
        require(0 <= self.dropout < 1, "dropout", self.dropout, "must be a probability from 0 up to (not including) 1")
        widths = self.filter_widths
        require(bool(widths) and all(w >= 1 for w in widths), "filter_widths", widths, "widths must be at least 1")
        require_at_least_one(
            self, "embedding_dim", "num_filters", "lstm_hidden_size", "lstm_num_layers", "min_document_frequency"
        )
        for name in ("min_document_frequency", "bigram_buckets", "linear_bigram_buckets", *LINEAR_PART_SETTINGS):
            # A shape flag that the architecture lacks would otherwise be ignored in silence.
            if getattr(self, name) is not None and name not in architecture_fields(self.model):
                raise MeliError(f"--{name}: --model {self.model} has no such part; it applies to {applies_to(name)}.")
        for name in ("bigram_buckets", "linear_bigram_buckets"):
            value = getattr(self, name)
            require(value is None or value >= 0, name, value, "must be 0 (off) or a bucket count")
        scale = self.linear_logit_scale
        require(scale is None or 0 < scale < math.inf, "linear_logit_scale", scale, "must be a finite number above 0")
        for name in LINEAR_PART_SETTINGS:
            if getattr(self, name) is not None and not self.linear_bigram_buckets:
                raise MeliError(f"--{name} applies to a linear part: add --linear_bigram_buckets N")

    @property
    def learns_title_vectors(self) -> bool:
        """Whether a new model's embeddings start from vectors learnt from the training titles (the default)."""
        return self.word_vectors is None and has_word_embeddings(self.model)

    @property
    def word_vectors_file(self) -> str | None:
        """The word2vec file `--word_vectors` names, if it names one."""
        return None if self.word_vectors in (None, NO_WORD_VECTORS) else self.word_vectors

    def architecture(self) -> dict:
        """The config fields of a new model of `--model`: what these arguments set, over the settings every new model
        of its kind gets (`ModelSpec.fixed`); the others keep the config's defaults."""
        given = {name: getattr(self, name) for name in architecture_fields(self.model)}
        return MODELS[self.model].fixed | {name: value for name, value in given.items() if value is not None}


@dataclass
class DataTrainingArguments:
    """Which data to train and evaluate on."""

    _argument_group_name = "data arguments"

    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder of course JSONL or challenge CSV files. Default: the bundled synthetic sample."},
    )
    language: str | None = field(default=None, metadata={"help": "Keep only rows of this language."})
    label_quality: str | None = field(default=None, metadata={"help": "Keep only rows of this label quality."})
    max_train_samples: int | None = field(default=None, metadata={"help": "At most this many train rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "At most this many validation rows."})
    max_test_samples: int | None = field(default=None, metadata={"help": "At most this many test rows."})
    drop_unknown_categories: bool = field(
        default=False, metadata={"help": "Drop validation/test rows whose category train lacks (else: error)."}
    )
    max_seq_length: int | None = field(
        default=None,
        metadata={
            "help": f"Tokens kept per title, in training and (saved with the tokenizer) in prediction. Default: "
            f"{MODEL_MAX_LENGTH}, or the checkpoint's when resuming."
        },
    )
    max_vocabulary_words: int = field(
        default=MAX_VOCABULARY_WORDS, metadata={"help": "Vocabulary size of a word tokenizer trained on titles."}
    )
    min_word_frequency: int = field(
        default=MIN_WORD_FREQUENCY, metadata={"help": "Minimum count of a word in a trained vocabulary."}
    )
    keep_numbers: bool | None = field(
        default=None,
        metadata={
            "help": "A vocabulary trained on the titles of challenge CSV files also keeps numbers and words with "
            "digits (32gb, i5); default: true there (false: digits dropped, as the course drops them). Course files "
            "come with their vocabulary, which has no numbers."
        },
    )
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without a better balanced accuracy."}
    )

    def __post_init__(self):
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise MeliError(f"--data_dir {self.data_dir}: folder not found.")
        require_at_least_one(
            self,
            "max_train_samples",
            "max_eval_samples",
            "max_test_samples",
            "max_seq_length",
            "max_vocabulary_words",
            "min_word_frequency",
            "early_stopping_patience",
        )


@dataclass
class MeliTrainingArguments(TrainingArguments):
    """`TrainingArguments` with defaults for this task. Those that depend on the architecture hold the MLP's here;
    `training_argument_parser(model)` sets another model's (`model_training_defaults`), as `scripts/train.py` does
    once `--model` is known. In Python: `MeliTrainingArguments(**model_training_defaults("cnn"))`."""

    _argument_group_name = "training arguments (transformers' TrainingArguments, with this task's defaults)"

    output_dir: str = field(default="outputs/mlp", metadata={"help": "Output folder: outputs/<model> by default."})
    learning_rate: float = field(
        default=2e-3,
        metadata={"help": "Learning rate: 2e-3 for mlp, 1e-3 for cnn/lstm, 0.1 for tfidf, 5e-5 for beto."},
    )
    per_device_train_batch_size: int = field(
        default=256, metadata={"help": "Training batch size: 256 for mlp/cnn/lstm, 1024 for tfidf, 32 for beto."}
    )
    per_device_eval_batch_size: int = field(default=512, metadata={"help": "Batch size of evaluation."})
    train_sampling_strategy: str = field(
        default="random",
        metadata={
            "help": "Training sampler: random, sequential, group_by_length or batch_rebalance. "
            "group_by_length for lstm, random for the others.",
            "choices": ["random", "sequential", "group_by_length", "batch_rebalance"],
        },
    )
    num_train_epochs: float = field(
        default=10, metadata={"help": "Training epochs: 10 for mlp, 4 for cnn, 6 for lstm, 2 for tfidf, 3 for beto."}
    )
    label_smoothing_factor: float = field(
        default=0.1,
        metadata={
            "help": "Share of the target spread over all labels: 0.1 for mlp, cnn and lstm, 0 for tfidf and beto."
        },
    )
    dataloader_pin_memory: bool | None = field(
        default=None,
        metadata={"help": "Pin batches in page-locked memory for faster GPU copies. Default: true where a GPU is."},
    )
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint: no, steps, epoch or best."})
    logging_strategy: str = field(default="epoch", metadata={"help": "When to log the train loss."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (the best is always kept)."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Keep the best checkpoint's weights."})
    metric_for_best_model: str | None = field(
        default="balanced_accuracy",
        metadata={"help": "The validation metric that picks the best checkpoint (and scores a search's trials)."},
    )
    hub_strategy: str = field(
        default="end",
        metadata={
            "help": "With --push_to_hub: end pushes the final folder once, after the local save; every_save also "
            "pushes at every checkpoint, checkpoint also the last checkpoint, all_checkpoints every checkpoint.",
            "choices": ["end", "every_save", "checkpoint", "all_checkpoints"],
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Replace the run already in --output_dir; it is moved to <output_dir>.previous and deleted "
            "once the new run is complete. Without it, such a folder is refused."
        },
    )
    class_balance: float = field(
        default=0.5,
        metadata={
            "help": "Weight class c's loss by (rows / (labels * rows of c)) ** this: 0 plain cross-entropy, "
            "1 every class the same total weight (what balanced accuracy scores), 0.5 in between."
        },
    )
    sparse_embeddings: bool | None = field(
        default=None,
        metadata={
            "help": "Sparse gradients for the embedding tables of mlp, cnn, lstm (word and bigram vectors) and tfidf "
            "(its weights): each step updates only the rows its batch holds, with AdamW's update (lazy Adam). "
            "Default: on for those models where the run allows it (--optim adamw_torch or adamw_torch_fused, one "
            "process or the gloo backend), else dense; off for beto."
        },
    )

    teacher: list[str] | None = field(
        default=None,
        metadata={
            "help": "Distil from these checkpoints (folders, Hub ids or ensemble files of scripts/ensemble.py, any "
            "architectures; several: their averaged "
            "probabilities): each training title's top --distill_top_k categories under them are computed once, "
            "cached with the data, and the loss becomes (1 - alpha) * CE(labels) + alpha * T^2 * "
            "KL(teacher_T || student_T)."
        },
    )
    distill_alpha: float = field(
        default=0.5, metadata={"help": "With --teacher: the share of the loss that follows the teachers (0 to 1)."}
    )
    distill_temperature: float = field(
        default=2.0, metadata={"help": "With --teacher: T, the temperature that softens teachers and student."}
    )
    distill_top_k: int = field(
        default=10, metadata={"help": "With --teacher: categories per title kept of the teachers' probabilities."}
    )
    distill_linear_part: bool = field(
        default=True,
        metadata={
            "help": "With --teacher and a --linear_combination mixture or product student: the linear part learns "
            "from the teachers as the network does (true), or from the labels alone (false), so that its mistakes "
            "stay its own rather than the teachers'."
        },
    )
    distill_augment: int = field(
        default=0,
        metadata={
            "help": "With --teacher: add this many perturbed copies of each training title (words dropped, some "
            "cut to a random n-gram; Tang et al. 2019), labelled by the teachers as well as by their categories. "
            "Each copy adds an epoch's worth of steps."
        },
    )

    def __post_init__(self):
        self.check_values()
        # Pinning without an accelerator does nothing but make PyTorch warn at every dataloader.
        if self.dataloader_pin_memory is None:
            self.dataloader_pin_memory = torch.accelerator.is_available()
        super().__post_init__()
        self.check_reporting()

    def check_values(self) -> None:
        """Refuse values that would train silently wrong (the Trainer accepts them all)."""
        require(self.learning_rate > 0, "learning_rate", self.learning_rate, "must be above 0")
        if self.max_steps <= 0:
            require(self.num_train_epochs > 0, "num_train_epochs", self.num_train_epochs, "must be above 0")
        require_at_least_one(
            self, "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"
        )
        smoothing = self.label_smoothing_factor
        require(0 <= smoothing < 1, "label_smoothing_factor", smoothing, "must be in [0, 1)")
        require(self.class_balance >= 0, "class_balance", self.class_balance, "must be 0 (off) or above")
        if self.sparse_embeddings and (obstacle := optimizer_obstacle(self.optim)) is not None:
            raise MeliError(f"--sparse_embeddings: {obstacle}")
        self.check_distillation()
        for name in ("weight_decay", "warmup_steps", "max_grad_norm", "adam_epsilon", "dataloader_num_workers"):
            require(getattr(self, name) >= 0, name, getattr(self, name), "must be 0 or above")
        for name in ("adam_beta1", "adam_beta2"):
            require(0 <= getattr(self, name) < 1, name, getattr(self, name), "must be in [0, 1)")
        for strategy, name in (("eval_strategy", "eval_steps"), ("save_strategy", "save_steps")):
            value = getattr(self, name)
            if getattr(self, strategy) == "steps" and value is not None:
                require(value > 0, name, value, f"must be above 0 with --{strategy} steps")
        limit = self.save_total_limit
        require(limit is None or limit >= 1, "save_total_limit", limit, "must be at least 1 (or unset: keep all)")
        require(0 <= self.seed < 2**32, "seed", self.seed, "must be in [0, 2**32)")

    def check_distillation(self) -> None:
        """The distillation flags go with `--teacher`, which names checkpoint folders (or Hub ids)."""
        if not self.teacher:
            for flag in dataclasses.fields(self):
                if flag.name.startswith("distill_") and getattr(self, flag.name) != flag.default:
                    raise MeliError(f"--{flag.name} applies to distillation: add --teacher CHECKPOINT")
            return
        for teacher in self.teacher:
            path = Path(teacher)
            if path.exists() and not (is_checkpoint_folder(path) or is_ensemble_file(path)):
                raise MeliError(
                    f"--teacher {teacher}: neither a checkpoint folder (no config.json) nor an ensemble file"
                )
        alpha = self.distill_alpha
        require(0 <= alpha <= 1, "distill_alpha", alpha, "must be from 0 (labels only) to 1 (teachers only)")
        require(self.distill_temperature > 0, "distill_temperature", self.distill_temperature, "must be above 0")
        require_at_least_one(self, "distill_top_k")
        require(self.distill_augment >= 0, "distill_augment", self.distill_augment, "must be 0 (none) or more")

    def check_reporting(self) -> None:
        """`--report_to` names integrations that exist and are installed (the Trainer fails on them only later)."""
        from transformers.integrations import get_available_reporting_integrations
        from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

        for name in self.report_to:
            known = name in INTEGRATION_TO_CALLBACK
            require(known, "report_to", name, f"unknown; choose from {', '.join(INTEGRATION_TO_CALLBACK)}")
            require(
                name in get_available_reporting_integrations(),
                "report_to",
                name,
                'its package is not installed (pip install -e ".[tracking]" for mlflow and tensorboard)',
            )


@dataclass
class HyperparameterSearchArguments:
    """`--hp_search`: trials of `Trainer.hyperparameter_search` in place of one training run."""

    _argument_group_name = "hyperparameter search arguments"

    hp_search: Literal["optuna"] | None = field(
        default=None,
        metadata={
            "help": "Search hyperparameters with this backend (Trainer.hyperparameter_search) instead of training "
            "once: trials maximise validation balanced accuracy; hp_search.json and best_run.json are written to "
            '--output_dir. Needs the hpo extra (pip install -e ".[hpo]").'
        },
    )
    hp_trials: int = field(
        default=20,
        metadata={"help": "Trials to run (in this process: workers sharing --hp_storage run as many each)."},
    )
    hp_timeout: float | None = field(
        default=None, metadata={"help": "Seconds after which no new trial starts (the running one finishes)."}
    )
    hp_space: str | None = field(
        default=None,
        metadata={
            "help": "YAML or JSON file of the search space, in place of --model's default: argument names mapped to "
            "{low, high[, log][, step]} or {choices: [...]} (docs/evaluation-and-search.md)."
        },
    )
    hp_pruner: Literal["median", "hyperband", "none"] = field(
        default="median",
        metadata={
            "help": "Stops a trial early when its validation score at an evaluation is below the median of earlier "
            "trials at the same step (median; from the 6th trial, at any evaluation), by successive halving "
            "(hyperband), or never (none)."
        },
    )
    hp_storage: str | None = field(
        default=None,
        metadata={
            "help": "optuna storage URL (sqlite:///search.db, postgresql://host/db): the study persists there and "
            "workers on several machines that name the same storage and study share its trials. Default: memory."
        },
    )
    hp_study_name: str | None = field(
        default=None, metadata={"help": "The study's name in --hp_storage. Default: --output_dir's folder name."}
    )
    hp_retrain_best: bool = field(
        default=False,
        metadata={
            "help": "Once the search ends, train the best trial's arguments (best_run.json) into <output_dir>/best."
        },
    )

    def __post_init__(self):
        if self.hp_search is None:
            for flag in dataclasses.fields(self):
                if getattr(self, flag.name) != flag.default:
                    raise MeliError(f"--{flag.name} applies to a search: add --hp_search optuna")
            return
        if importlib.util.find_spec(self.hp_search) is None:
            raise MeliError(f"--hp_search {self.hp_search}: its package is not installed (pip install -e '.[hpo]')")
        require_at_least_one(self, "hp_trials")
        require(
            self.hp_timeout is None or self.hp_timeout > 0, "hp_timeout", self.hp_timeout, "must be above 0 seconds"
        )
        if self.hp_study_name is not None and not self.hp_study_name.strip():
            raise MeliError("--hp_study_name: give a name (or leave the flag out: --output_dir's folder name)")
        if self.hp_space is not None and not is_readable_file(self.hp_space):
            raise MeliError(f"--hp_space {self.hp_space}: file not found.")


def model_training_defaults(model: str) -> dict:
    """The defaults of `--model`, its best measured settings on the real sample (BENCHMARKS.md): the training
    arguments and the shape flags (`ModelSpec.architecture_defaults`)."""
    spec = MODELS[model]
    return spec.architecture_defaults | {
        "output_dir": f"outputs/{model}",
        "learning_rate": spec.learning_rate,
        "per_device_train_batch_size": spec.batch_size,
        "num_train_epochs": spec.num_train_epochs,
        "train_sampling_strategy": spec.train_sampling_strategy,
        "label_smoothing_factor": spec.label_smoothing_factor,
    }
