"""Training of every architecture through one `Trainer`: argument groups, the model registry and the run.

`scripts/train.py` parses the three argument groups and calls `run_training`, whose body reads as the story of
a run: data -> labels -> tokenizer and model -> preprocessing -> Trainer -> train -> evaluate -> save -> push.
Every setting is checked before any work: a value that would train a chance-level model, or fail an hour in, is
refused with one line naming the flag.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow.compute as pc
import torch
from datasets import DatasetDict
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_pt_utils import LengthGroupedSampler

from .checkpoints import (
    check_checkpoint,
    check_output_dir,
    remove_previous_run,
    resolve_resume_checkpoint,
    set_aside_previous_run,
)
from .collator import WordIdBatches, WordIdCollator
from .configuration_meli import MeliCNNConfig, MeliLSTMConfig, MeliMLPConfig, MeliTfidfConfig
from .data import find_course_vocabulary, find_source_files, load_meli, read_token_to_index
from .embeddings import load_word_vectors
from .errors import MeliDataError, MeliError
from .integrations import load_pretrained, mlflow_run, push_checkpoint
from .metrics import compute_metrics, logits_to_label_ids
from .model_card import plot_learning_curves, write_model_card
from .modeling_meli import (
    MeliCNNForSequenceClassification,
    MeliLSTMForSequenceClassification,
    MeliMLPForSequenceClassification,
    MeliTfidfForSequenceClassification,
)
from .sample import sample_dir
from .tokenization import (
    MAX_VOCABULARY_WORDS,
    MIN_WORD_FREQUENCY,
    MODEL_MAX_LENGTH,
    train_word_tokenizer,
    word_tokenizer_from_vocabulary,
)

logger = logging.getLogger(__name__)

BETO = "dccuchile/bert-base-spanish-wwm-cased"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


@dataclass(frozen=True)
class ModelSpec:
    """How `--model NAME` is built: its config and model classes, its tokenizer kind and its training defaults."""

    config_class: type
    model_class: type
    tokenizer: str  # "word": meli_hf's word-level tokenizer; "pretrained": the checkpoint's own
    learning_rate: float
    batch_size: int
    num_train_epochs: float
    train_sampling_strategy: str
    label_smoothing_factor: float


# Tuned on the real MeLi sample (bench/sweep, BENCHMARKS.md): validation balanced accuracy still rose at the last
# of 10 MLP and 8 LSTM/CNN epochs, and the MLP gained from 2e-3 and from label smoothing 0.1. Length-grouped
# batches train the LSTM 1.4x faster on CPU at the same accuracy (bench/training_throughput.py). The TF-IDF model
# peaks within two epochs at Adam's learning rate 0.1 and then overfits its rare features.
MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(MeliMLPConfig, MeliMLPForSequenceClassification, "word", 2e-3, 256, 10, "random", 0.1),
    "cnn": ModelSpec(MeliCNNConfig, MeliCNNForSequenceClassification, "word", 1e-3, 256, 8, "random", 0.0),
    "lstm": ModelSpec(MeliLSTMConfig, MeliLSTMForSequenceClassification, "word", 1e-3, 256, 8, "group_by_length", 0.0),
    "tfidf": ModelSpec(MeliTfidfConfig, MeliTfidfForSequenceClassification, "word", 0.1, 1024, 2, "random", 0.0),
    "beto": ModelSpec(AutoConfig, AutoModelForSequenceClassification, "pretrained", 5e-5, 32, 3, "random", 0.0),
}


def require(condition: bool, flag: str, value, requirement: str) -> None:
    """Refuse a setting with one line naming the flag, the value given and what it must be."""
    if not condition:
        shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        raise MeliError(f"--{flag} {shown}: {requirement}")


def has_word_embeddings(model: str) -> bool:
    """Whether `--model` starts from word vectors, the only models `--word_vectors` can initialise."""
    return "embedding_dim" in getattr(MODELS[model].config_class, "__dataclass_fields__", {})


@dataclass
class ModelArguments:
    """Which architecture to train and its shape."""

    model: str = field(default="mlp", metadata={"help": f"Architecture: one of {', '.join(MODELS)}."})
    model_name_or_path: str = field(
        default=BETO, metadata={"help": "For --model beto: pretrained checkpoint, a Hub id or a local folder."}
    )
    embedding_dim: int = field(default=300, metadata={"help": "Word-vector size (ignored with --word_vectors)."})
    word_vectors: str | None = field(
        default=None, metadata={"help": "word2vec text file (.txt/.gz/.bz2), e.g. SBW-vectors-300-min5.txt.gz."}
    )
    freeze_embeddings: bool = field(default=False, metadata={"help": "Keep the word vectors fixed."})
    hidden_layers: list[int] = field(default_factory=lambda: [1024], metadata={"help": "Hidden layer sizes."})
    bigram_buckets: int | None = field(
        default=None,
        metadata={
            "help": "Word bigrams hashed into this many buckets: vectors averaged with the words for mlp (default 0: "
            "words only), features for tfidf (default 262144)."
        },
    )
    dropout: float = field(default=0.3, metadata={"help": "Dropout probability (training only)."})
    filter_widths: list[int] = field(default_factory=lambda: [2, 3, 4], metadata={"help": "CNN filter widths."})
    num_filters: int = field(default=256, metadata={"help": "CNN filters per width."})
    lstm_hidden_size: int = field(default=512, metadata={"help": "LSTM hidden size per direction."})
    lstm_num_layers: int = field(default=1, metadata={"help": "Stacked LSTM layers."})
    bidirectional: bool = field(default=True, metadata={"help": "Bidirectional LSTM."})
    lstm_pooling: Literal["last", "max"] = field(
        default="last", metadata={"help": "LSTM: last hidden states, or the maximum of the outputs over the words."}
    )

    def __post_init__(self):
        if self.model not in MODELS:
            raise MeliError(f"--model {self.model!r} is unknown; choose one of {', '.join(MODELS)}.")
        if self.word_vectors is not None and not Path(self.word_vectors).is_file():
            raise MeliError(f"--word_vectors {self.word_vectors}: file not found.")
        if self.word_vectors is not None and not has_word_embeddings(self.model):
            raise MeliError(f"--word_vectors: --model {self.model} has no word embeddings to load them into.")
        require(self.embedding_dim >= 1, "embedding_dim", self.embedding_dim, "must be at least 1")
        require(
            all(n >= 1 for n in self.hidden_layers), "hidden_layers", self.hidden_layers, "sizes must be at least 1"
        )
        require(0 <= self.dropout < 1, "dropout", self.dropout, "must be a probability from 0 up to (not including) 1")
        widths = self.filter_widths
        require(bool(widths) and all(w >= 1 for w in widths), "filter_widths", widths, "widths must be at least 1")
        require(self.num_filters >= 1, "num_filters", self.num_filters, "must be at least 1")
        require(self.lstm_hidden_size >= 1, "lstm_hidden_size", self.lstm_hidden_size, "must be at least 1")
        require(self.lstm_num_layers >= 1, "lstm_num_layers", self.lstm_num_layers, "must be at least 1")
        if self.bigram_buckets is not None:
            require(
                self.bigram_buckets >= 0, "bigram_buckets", self.bigram_buckets, "must be 0 (off) or a bucket count"
            )


@dataclass
class DataTrainingArguments:
    """Which data to train and evaluate on."""

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
    keep_numbers: bool = field(
        default=False,
        metadata={"help": "A vocabulary trained on titles also keeps numbers and words with digits (32gb, i5)."},
    )
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without a better balanced accuracy."}
    )

    def __post_init__(self):
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise MeliError(f"--data_dir {self.data_dir}: folder not found.")
        for name in ("max_train_samples", "max_eval_samples", "max_test_samples", "max_seq_length"):
            value = getattr(self, name)
            require(value is None or value >= 1, name, value, "must be at least 1")
        require(
            self.max_vocabulary_words >= 1, "max_vocabulary_words", self.max_vocabulary_words, "must be at least 1"
        )
        require(self.min_word_frequency >= 1, "min_word_frequency", self.min_word_frequency, "must be at least 1")
        patience = self.early_stopping_patience
        require(patience is None or patience >= 1, "early_stopping_patience", patience, "must be at least 1")


# Training arguments whose defaults depend on `--model`, and the values that stand in until it is known.
MODEL_DEPENDENT_PLACEHOLDERS = {
    "output_dir": "outputs/unresolved",
    "learning_rate": 0.0,
    "per_device_train_batch_size": 1,
    "num_train_epochs": 1.0,
    "train_sampling_strategy": "random",
    "label_smoothing_factor": 0.0,
}


@dataclass
class MeliTrainingArguments(TrainingArguments):
    """`TrainingArguments` with defaults for this task; learning rate, batch size and epochs depend on `--model`."""

    output_dir: str | None = field(default=None, metadata={"help": "Output folder. Default: outputs/<model>."})
    learning_rate: float | None = field(
        default=None, metadata={"help": "Default: 2e-3 for mlp, 1e-3 for cnn/lstm, 0.1 for tfidf, 5e-5 for beto."}
    )
    per_device_train_batch_size: int | None = field(
        default=None, metadata={"help": "Default: 256 for mlp/cnn/lstm, 1024 for tfidf, 32 for beto."}
    )
    per_device_eval_batch_size: int = field(default=512, metadata={"help": "Batch size of evaluation."})
    train_sampling_strategy: str | None = field(
        default=None,
        metadata={
            "help": "Training sampler: random, sequential, group_by_length or batch_rebalance. "
            "Default: group_by_length for lstm, random for the others.",
            "choices": ["random", "sequential", "group_by_length", "batch_rebalance"],
        },
    )
    num_train_epochs: float | None = field(
        default=None,
        metadata={"help": "Training epochs. Default: 10 for mlp, 8 for cnn/lstm, 2 for tfidf, 3 for beto."},
    )
    label_smoothing_factor: float | None = field(
        default=None, metadata={"help": "Share of the target spread over all labels. Default: 0.1 for mlp, else 0."}
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
    metric_for_best_model: str | None = field(default="balanced_accuracy", metadata={"help": "Best-model metric."})
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

    def __post_init__(self):
        self.check_values()
        # Placeholders so TrainingArguments validates; `resolve_model_defaults` sets the real values.
        self._unresolved = {name for name in MODEL_DEPENDENT_PLACEHOLDERS if getattr(self, name) is None}
        for name in self._unresolved:
            setattr(self, name, MODEL_DEPENDENT_PLACEHOLDERS[name])
        # Pinning without an accelerator does nothing but make PyTorch warn at every dataloader.
        if self.dataloader_pin_memory is None:
            self.dataloader_pin_memory = torch.accelerator.is_available()
        super().__post_init__()
        self.check_reporting()

    def check_values(self) -> None:
        """Refuse values that would train silently wrong (the Trainer accepts them all); unset per-model fields
        are left to their defaults."""
        for name, low in (("learning_rate", 0.0), ("num_train_epochs", 0.0)):
            value = getattr(self, name)
            if name == "num_train_epochs" and self.max_steps > 0:
                continue
            require(value is None or value > low, name, value, "must be above 0")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            value = getattr(self, name)
            require(value is None or value >= 1, name, value, "must be at least 1")
        smoothing = self.label_smoothing_factor
        require(smoothing is None or 0 <= smoothing < 1, "label_smoothing_factor", smoothing, "must be in [0, 1)")
        require(self.class_balance >= 0, "class_balance", self.class_balance, "must be 0 (off) or above")
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

    def check_reporting(self) -> None:
        """`--report_to` names integrations that exist and are installed (the Trainer fails on them only later)."""
        from transformers.integrations import get_available_reporting_integrations
        from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

        for name in self.report_to:
            if name not in INTEGRATION_TO_CALLBACK:
                require(False, "report_to", name, f"unknown; choose from {', '.join(INTEGRATION_TO_CALLBACK)}")
            require(
                name in get_available_reporting_integrations(),
                "report_to",
                name,
                'its package is not installed (pip install -e ".[tracking]" for mlflow and tensorboard)',
            )

    def resolve_model_defaults(self, model: str) -> None:
        """Fill the per-architecture defaults of the fields the user left unset."""
        spec = MODELS[model]
        defaults = {
            "output_dir": f"outputs/{model}",
            "learning_rate": spec.learning_rate,
            "per_device_train_batch_size": spec.batch_size,
            "num_train_epochs": spec.num_train_epochs,
            "train_sampling_strategy": spec.train_sampling_strategy,
            "label_smoothing_factor": spec.label_smoothing_factor,
        }
        for name in self._unresolved:
            setattr(self, name, defaults[name])


def set_malloc_option(parameter: int, value: int) -> None:
    """glibc's `mallopt`; other platforms, and Linux without glibc, are left as they are."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(parameter, value)


def keep_freed_memory_in_heap() -> None:
    """Let glibc reuse freed large blocks instead of returning them to the OS.

    glibc hands every allocation over 32 MB back to the kernel when it is freed, and the dense gradient of the
    word embeddings (50,002 x 300 floats, 60 MB) is allocated anew at every step, so each step page-faults 60 MB
    in again: a third of an MLP step on 2 cores (bench/training_throughput.py).
    """
    set_malloc_option(M_MMAP_THRESHOLD, 1 << 30)
    set_malloc_option(M_TRIM_THRESHOLD, 1 << 30)


class ClassBalancedLoss:
    """Cross-entropy with per-class weights, the Trainer's `compute_loss_func` for every architecture.

    Balanced accuracy scores each category alike, while plain cross-entropy favours the frequent ones. Weights are
    scaled so that their mean over the training rows is 1, which keeps the learning rate's meaning.
    """

    def __init__(self, label_counts: torch.Tensor, power: float, label_smoothing: float = 0.0):
        counts = label_counts.double()
        weights = (counts.sum() / (len(counts) * counts.clamp(min=1))) ** power
        self.weights = (weights * counts.sum() / (weights * counts).sum()).float()
        # The Trainer skips its own label smoother when a `compute_loss_func` is given, so it is applied here.
        self.label_smoothing = label_smoothing

    def __call__(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        logits = outputs["logits"].float()
        losses = nn.functional.cross_entropy(
            logits,
            labels,
            weight=self.weights.to(logits.device),
            reduction="none",
            label_smoothing=self.label_smoothing,
        )
        # The Trainer expects the loss normalised over the whole accumulated batch when it passes its size.
        return losses.mean() if num_items_in_batch is None else losses.sum() / num_items_in_batch


def check_resume_checkpoint(checkpoint: Path, model: str) -> None:
    """Fail before any work when `--resume_from_checkpoint` holds another architecture than `--model`."""
    if not (checkpoint / "config.json").is_file():
        raise MeliError(f"--resume_from_checkpoint {checkpoint}: no config.json, not a checkpoint folder")
    found = AutoConfig.from_pretrained(checkpoint).model_type
    expected = getattr(MODELS[model].config_class, "model_type", None)  # None: beto, any transformer
    meli_types = {getattr(spec.config_class, "model_type", None) for spec in MODELS.values()} - {None}
    if (expected is not None and found != expected) or (expected is None and found in meli_types):
        raise MeliError(f"--resume_from_checkpoint {checkpoint} holds a {found!r} model, not --model {model}.")


def check_evaluation_data(dataset: DatasetDict, data_dir: Path, training_args: TrainingArguments) -> None:
    """Evaluation during training (and keeping the best model) needs a validation split."""
    if "validation" in dataset or (training_args.eval_strategy == "no" and not training_args.load_best_model_at_end):
        return
    raise MeliError(
        f"--data_dir {data_dir} has no validation split (validation.csv[.gz] or <language>.validation.jsonl[.gz]), "
        "which evaluation during training needs; add one, or train without: --eval_strategy no "
        "--load_best_model_at_end false"
    )


def check_same_labels(config, label_names: list[str], checkpoint: Path) -> None:
    """A resumed model scores the same categories in the same order as the data it resumes on."""
    saved = [config.id2label[i] for i in range(config.num_labels)]
    if saved != label_names:
        missing, extra = sorted(set(label_names) - set(saved)), sorted(set(saved) - set(label_names))
        raise MeliError(
            f"--resume_from_checkpoint {checkpoint} was trained on other categories than this data "
            f"({len(missing)} new, e.g. {missing[:3]}; {len(extra)} gone, e.g. {extra[:3]}): resume with the data "
            "flags of the original run"
        )


def planned_steps(training_args: TrainingArguments, train_rows: int) -> int:
    """Optimizer steps of the whole run, as the Trainer counts them (each process reads its share of the rows)."""
    if training_args.max_steps > 0:
        return training_args.max_steps
    rows_per_process = math.ceil(train_rows / training_args.world_size)
    rounding = math.floor if training_args.dataloader_drop_last else math.ceil
    batches = rounding(rows_per_process / training_args.per_device_train_batch_size)
    per_epoch = max(math.ceil(batches / training_args.gradient_accumulation_steps), 1)
    return math.ceil(training_args.num_train_epochs * per_epoch)


def load_data(data_args: DataTrainingArguments, seed: int) -> tuple[DatasetDict, Path]:
    """The splits of `--data_dir` (or of the bundled sample) and the folder they came from."""
    data_dir = Path(data_args.data_dir) if data_args.data_dir else sample_dir()
    max_rows = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_test_samples,
    }
    dataset = load_meli(
        data_dir,
        language=data_args.language,
        label_quality=data_args.label_quality,
        max_rows={split: n for split, n in max_rows.items() if n is not None},
        seed=seed,
        drop_unknown_categories=data_args.drop_unknown_categories,
    )
    return dataset, data_dir


def build_word_tokenizer(dataset: DatasetDict, data_dir: Path, data_args: DataTrainingArguments):
    """The course's vocabulary when the data carries word ids, otherwise one trained on the train titles."""
    if "input_ids" in dataset["train"].column_names:
        if data_args.keep_numbers:
            raise MeliError(
                f"--keep_numbers: {data_dir} holds course files, whose word ids come from the course's vocabulary "
                "(no numbers); it applies to a vocabulary trained on the titles of challenge CSV files."
            )
        language = data_args.language or "spanish"
        vocabulary = find_course_vocabulary(find_source_files(data_dir, language), language)
        if vocabulary is None:
            raise MeliDataError(data_dir, None, None, f"no {language}_token_to_index.json.gz beside the course files")
        return word_tokenizer_from_vocabulary(read_token_to_index(vocabulary))
    titles = (batch["title"] for batch in dataset["train"].select_columns(["title"]).iter(batch_size=10_000))
    return train_word_tokenizer(
        titles, data_args.max_vocabulary_words, data_args.min_word_frequency, data_args.keep_numbers
    )


def build_model(model_args: ModelArguments, tokenizer, id2label: dict[int, str], seed: int):
    """A new model of `--model` for these labels; word vectors are copied in after initialisation."""
    spec = MODELS[model_args.model]
    label2id = {name: i for i, name in id2label.items()}
    if spec.tokenizer == "pretrained":
        # Float32 master weights whatever the checkpoint's stored dtype: `--bf16`/`--fp16` are autocast on top.
        return load_pretrained(
            AutoModelForSequenceClassification.from_pretrained,
            model_args.model_name_or_path,
            "--model_name_or_path",
            num_labels=len(id2label),
            id2label=id2label,
            label2id=label2id,
            dtype=torch.float32,
        )
    vectors = (
        load_word_vectors(model_args.word_vectors, tokenizer.get_vocab(), seed) if model_args.word_vectors else None
    )
    architecture = {
        name: getattr(model_args, name)
        for name in (
            "embedding_dim",
            "hidden_layers",
            "bigram_buckets",
            "dropout",
            "freeze_embeddings",
            "filter_widths",
            "num_filters",
            "lstm_hidden_size",
            "lstm_num_layers",
            "bidirectional",
            "lstm_pooling",
        )
        if name in spec.config_class.__dataclass_fields__ and getattr(model_args, name) is not None
    }
    if vectors is not None:
        architecture["embedding_dim"] = vectors.matrix.shape[1]
    config = spec.config_class(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        id2label=id2label,
        label2id=label2id,
        **architecture,
    )
    model = spec.model_class(config)
    if vectors is not None:
        model.load_word_vectors(torch.from_numpy(vectors.matrix))
    return model


def build_collator(model: str, tokenizer: PreTrainedTokenizerBase):
    """Word ids are padded in one vectorised pass; subword inputs go through the tokenizer's own padding."""
    if MODELS[model].tokenizer == "word":
        return WordIdCollator(pad_token_id=tokenizer.pad_token_id)
    return DataCollatorWithPadding(tokenizer)


def tokenize(
    dataset: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_seq_length: int, training_args: TrainingArguments
) -> DatasetDict:
    """Titles -> `input_ids`, cached by `datasets`; course word ids are kept when the tokenizer is the word one."""
    with training_args.main_process_first(desc="tokenizing titles"):
        return dataset.map(
            lambda batch: tokenizer(batch["title"], truncation=True, max_length=max_seq_length),
            batched=True,
            remove_columns=[c for c in dataset["train"].column_names if c != "label"],
            desc="Tokenizing titles",
        )


def truncate_word_ids(dataset: DatasetDict, max_seq_length: int, training_args: TrainingArguments) -> DatasetDict:
    """Course word ids cut to `max_seq_length`, as titles are tokenized: one long row would otherwise pad a whole
    batch to its length (and serving, which truncates, would see other inputs than training)."""
    longest = max(pc.max(pc.list_value_length(d.data.table["input_ids"])).as_py() or 0 for d in dataset.values())
    if longest <= max_seq_length:
        return dataset
    with training_args.main_process_first(desc="truncating word ids"):
        return (
            dataset.with_format("arrow")
            .map(
                lambda table: table.set_column(
                    table.schema.get_field_index("input_ids"),
                    "input_ids",
                    pc.list_slice(table["input_ids"], 0, max_seq_length),
                ),
                batched=True,
                desc=f"Truncating word ids to {max_seq_length}",
            )
            .with_format(None)
        )


def prepare_datasets(
    dataset: DatasetDict, tokenizer, model: str, max_seq_length: int, training_args: TrainingArguments
) -> dict:
    """Model inputs per split: word ids served as Arrow batches for the baselines, tokenized titles for BETO."""
    if MODELS[model].tokenizer != "word" or "input_ids" not in dataset["train"].column_names:
        dataset = tokenize(dataset, tokenizer, max_seq_length, training_args)
    else:
        dataset = truncate_word_ids(dataset, max_seq_length, training_args)
    if MODELS[model].tokenizer != "word":
        return dict(dataset)
    # WordIdBatches holds only the model's inputs; the Trainer's column filter would split its Arrow batches.
    training_args.remove_unused_columns = False
    return {split: WordIdBatches(data) for split, data in dataset.items()}


def fit_idf(model: MeliTfidfForSequenceClassification, train: WordIdBatches, batch_size: int = 8192) -> None:
    """The TF-IDF model's document frequencies, counted over the training titles in large Arrow batches."""
    collator = WordIdCollator(pad_token_id=model.config.pad_token_id)
    model.fit_idf(collator(train.table.slice(start, batch_size)) for start in range(0, len(train), batch_size))


class MeliTrainer(Trainer):
    """The `Trainer`, writing meli-hf's model card wherever it would write its own (also before a Hub push)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_card_details: dict = {}

    def _get_train_sampler(self, train_dataset=None):
        train_dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.args.train_sampling_strategy == "group_by_length" and isinstance(train_dataset, WordIdBatches):
            # The Trainer would read the lengths row by row (minutes at the course's size); Arrow has them at once.
            batch_size = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return LengthGroupedSampler(batch_size, lengths=train_dataset.lengths())
        return super()._get_train_sampler(train_dataset)

    def create_model_card(self, *args, **kwargs) -> None:
        if self.is_world_process_zero():
            write_model_card(self.args.output_dir, self.args, self.model_card_details)


def run_training(
    model_args: ModelArguments, data_args: DataTrainingArguments, training_args: MeliTrainingArguments
) -> dict[str, float]:
    """Train, evaluate on validation and test, save the checkpoint with card and curves, push if asked."""
    training_args.resolve_model_defaults(model_args.model)
    checkpoint = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    if checkpoint is not None:
        check_resume_checkpoint(checkpoint, model_args.model)
        steps_done = check_checkpoint(checkpoint)["global_step"]
        training_args.resume_from_checkpoint = str(checkpoint)
    replaces_earlier_run = check_output_dir(
        training_args.output_dir, training_args.overwrite_output_dir, resume_checkpoint=checkpoint
    )
    set_seed(training_args.seed)
    spec = MODELS[model_args.model]

    dataset, data_dir = load_data(data_args, training_args.seed)
    check_evaluation_data(dataset, data_dir, training_args)
    if checkpoint is not None and steps_done >= planned_steps(training_args, len(dataset["train"])):
        raise MeliError(
            f"--resume_from_checkpoint {checkpoint} is at step {steps_done}, the end of this run: nothing is left "
            "to train (raise --num_train_epochs or --max_steps to train on)"
        )
    label_names = dataset["train"].features["label"].names
    id2label = dict(enumerate(label_names))
    logger.info(
        "data %s: %s rows, %d labels", data_dir, {split: len(d) for split, d in dataset.items()}, len(label_names)
    )

    if checkpoint is not None:
        # The checkpoint's own tokenizer and architecture: data or model flags changed since must not alter them.
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint, dtype=torch.float32)
        check_same_labels(model.config, label_names, checkpoint)
        max_seq_length = data_args.max_seq_length or tokenizer.model_max_length
    else:
        if spec.tokenizer == "word":
            tokenizer = build_word_tokenizer(dataset, data_dir, data_args)
        else:
            tokenizer = load_pretrained(
                AutoTokenizer.from_pretrained, model_args.model_name_or_path, "--model_name_or_path"
            )
        model = build_model(model_args, tokenizer, id2label, training_args.seed)
        max_seq_length = data_args.max_seq_length or MODEL_MAX_LENGTH
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None:
        require(max_seq_length <= positions, "max_seq_length", max_seq_length, f"the model has {positions} positions")
    # Saved with the tokenizer, so that prediction truncates titles as training did.
    tokenizer.model_max_length = max_seq_length
    logger.info(
        "model %s: %d parameters, vocabulary %d, device %s, %d processes",
        model_args.model,
        model.num_parameters(),
        len(tokenizer),
        training_args.device,
        training_args.world_size,
    )

    compute_loss_func = None
    if training_args.class_balance:
        labels = torch.as_tensor(dataset["train"].with_format("numpy")["label"][:])
        label_counts = torch.bincount(labels, minlength=len(label_names))
        compute_loss_func = ClassBalancedLoss(
            label_counts, training_args.class_balance, training_args.label_smoothing_factor
        )
    dataset = prepare_datasets(dataset, tokenizer, model_args.model, max_seq_length, training_args)
    if isinstance(model, MeliTfidfForSequenceClassification) and checkpoint is None:
        fit_idf(model, dataset["train"])

    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False  # pushed once, after the local save
    callbacks = [EarlyStoppingCallback(data_args.early_stopping_patience)] if data_args.early_stopping_patience else []
    trainer = MeliTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset["train"],
        eval_dataset=dataset.get("validation"),
        processing_class=tokenizer,
        data_collator=build_collator(model_args.model, tokenizer),
        compute_metrics=compute_metrics,
        compute_loss_func=compute_loss_func,
        preprocess_logits_for_metrics=logits_to_label_ids,
        callbacks=callbacks,
    )

    previous_run = None
    if replaces_earlier_run:
        trainer.accelerator.wait_for_everyone()  # every process has checked the folder before it is moved
        with training_args.main_process_first(desc="setting the earlier run aside"):
            if training_args.should_save:
                previous_run = set_aside_previous_run(training_args.output_dir)
    with mlflow_run(training_args):
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        metrics = {f"train_{k}" if not k.startswith("train_") else k: v for k, v in train_result.metrics.items()}
        metrics["train_samples"] = len(dataset["train"])
        for split, prefix in (("validation", "eval"), ("test", "test")):
            if split in dataset:
                metrics |= trainer.evaluate(dataset[split], metric_key_prefix=prefix)
                metrics[f"{prefix}_samples"] = len(dataset[split])
    trainer.save_model()
    trainer.log_metrics("all", metrics)
    trainer.save_metrics("all", metrics, combined=False)
    trainer.save_state()

    if trainer.is_world_process_zero():
        plot_learning_curves(trainer.state.log_history, Path(training_args.output_dir) / "learning_curves.png")
        trainer.model_card_details = {
            "model": model_args.model,
            "data_dir": str(data_dir),
            "metrics": metrics,
            "rows": {split: len(d) for split, d in dataset.items()},
            "labels": len(label_names),
            # The config's value where it has one: what the model was built with, defaults and vector sizes resolved.
            "model_arguments": {k: getattr(trainer.model.config, k, v) for k, v in model_args.__dict__.items()},
            "architecture": type(trainer.model).__name__,
        }
        trainer.create_model_card()
        remove_previous_run(previous_run)
        if push_to_hub:
            push_checkpoint(trainer)
    return metrics
