"""One entry per architecture that `--model` names: its config and model classes, its tokenizer kind and its
training defaults, and the builders of a new run's tokenizer, model and collator. No if-chains over architecture
names elsewhere."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from datasets import DatasetDict
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
)

from ..data.collator import WordIdCollator
from ..data.embeddings import WordVectors, load_word_vectors
from ..data.loading import find_course_vocabulary, find_source_files, read_token_to_index
from ..data.tokenization import keeps_numbers, train_word_tokenizer, word_tokenizer_from_vocabulary
from ..errors import MeliDataError, MeliError
from ..hub import load_pretrained, new_head_reported_in_one_line
from ..models.configuration_meli import MeliCNNConfig, MeliLSTMConfig, MeliMLPConfig, MeliTfidfConfig
from ..models.modeling_meli import (
    MeliCNNForSequenceClassification,
    MeliLSTMForSequenceClassification,
    MeliMLPForSequenceClassification,
    MeliTfidfForSequenceClassification,
)

if TYPE_CHECKING:
    from .arguments import DataTrainingArguments, ModelArguments

BETO = "dccuchile/bert-base-spanish-wwm-cased"
# `ModelArguments` fields that are config fields of the baselines.
ARCHITECTURE_FIELDS = {
    "embedding_dim",
    "hidden_layers",
    "bigram_buckets",
    "linear_bigram_buckets",
    "linear_combination",
    "linear_logit_scale",
    "min_document_frequency",
    "dropout",
    "freeze_embeddings",
    "filter_widths",
    "num_filters",
    "lstm_hidden_size",
    "lstm_num_layers",
    "bidirectional",
    "lstm_pooling",
}


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
    word_embeddings: bool  # starts from word vectors: what `--word_vectors` can initialise
    search_space: dict  # `--hp_search`'s default space, in the format of an `--hp_space` file


def search_space(learning_rate: tuple[float, float], epochs: tuple[int, int], **architecture: dict) -> dict:
    """A default `--hp_search` space: the learning rate (log scale) and epochs around the tuned defaults, the
    architecture's own sizes, and the two loss settings every model has (class balance, label smoothing)."""
    return {
        "learning_rate": {"low": learning_rate[0], "high": learning_rate[1], "log": True},
        "num_train_epochs": {"low": epochs[0], "high": epochs[1]},
        **architecture,
        "class_balance": {"low": 0.0, "high": 1.0},
        "label_smoothing_factor": {"low": 0.0, "high": 0.2},
    }


HIDDEN_LAYERS = {"choices": [[512], [1024], [2048], [1024, 1024]]}
DROPOUT = {"low": 0.0, "high": 0.5}

# Tuned on the real MeLi sample (bench/sweep, BENCHMARKS.md): validation balanced accuracy still rose at the last
# of 10 MLP and 8 LSTM/CNN epochs, and the MLP gained from 2e-3 and from label smoothing 0.1. Length-grouped
# batches train the LSTM 1.4x faster on CPU at the same accuracy (bench/training_throughput.py). The TF-IDF model
# peaks within two epochs at Adam's learning rate 0.1 and then overfits its rare features.
MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(
        MeliMLPConfig,
        MeliMLPForSequenceClassification,
        "word",
        2e-3,
        256,
        10,
        "random",
        0.1,
        word_embeddings=True,
        search_space=search_space((5e-4, 8e-3), (4, 12), hidden_layers=HIDDEN_LAYERS, dropout=DROPOUT),
    ),
    "cnn": ModelSpec(
        MeliCNNConfig,
        MeliCNNForSequenceClassification,
        "word",
        1e-3,
        256,
        8,
        "random",
        0.0,
        word_embeddings=True,
        search_space=search_space(
            (3e-4, 3e-3),
            (4, 10),
            num_filters={"choices": [128, 256, 512]},
            filter_widths={"choices": [[2, 3], [2, 3, 4], [1, 2, 3, 4]]},
            hidden_layers=HIDDEN_LAYERS,
            dropout=DROPOUT,
        ),
    ),
    "lstm": ModelSpec(
        MeliLSTMConfig,
        MeliLSTMForSequenceClassification,
        "word",
        1e-3,
        256,
        8,
        "group_by_length",
        0.0,
        word_embeddings=True,
        search_space=search_space(
            (3e-4, 3e-3),
            (4, 10),
            lstm_hidden_size={"choices": [256, 512, 768]},
            lstm_pooling={"choices": ["last", "max"]},
            hidden_layers=HIDDEN_LAYERS,
            dropout=DROPOUT,
        ),
    ),
    "tfidf": ModelSpec(
        MeliTfidfConfig,
        MeliTfidfForSequenceClassification,
        "word",
        0.1,
        1024,
        2,
        "random",
        0.0,
        word_embeddings=False,
        search_space=search_space((0.02, 0.3), (1, 4)),
    ),
    "beto": ModelSpec(
        AutoConfig,
        AutoModelForSequenceClassification,
        "pretrained",
        5e-5,
        32,
        3,
        "random",
        0.0,
        word_embeddings=False,
        search_space=search_space(
            (1e-5, 1e-4), (2, 4), weight_decay={"low": 0.0, "high": 0.1}, warmup_steps={"low": 0.0, "high": 0.2}
        ),
    ),
}


def has_word_embeddings(model: str) -> bool:
    """Whether `--model` starts from word vectors, the only models `--word_vectors` can initialise."""
    return MODELS[model].word_embeddings


def build_word_tokenizer(dataset: DatasetDict, data_dir: Path, data_args: DataTrainingArguments):
    """The course's vocabulary when the data carries word ids, otherwise one trained on the train titles (numbers
    kept unless `--keep_numbers false`)."""
    course_files = "input_ids" in dataset["train"].column_names
    keep_numbers = keeps_numbers(data_args.keep_numbers, data_dir, course_files)
    if course_files:
        language = data_args.language or "spanish"
        vocabulary = find_course_vocabulary(find_source_files(data_dir, language), language)
        if vocabulary is None:
            raise MeliDataError(data_dir, None, None, f"no {language}_token_to_index.json.gz beside the course files")
        return word_tokenizer_from_vocabulary(read_token_to_index(vocabulary))
    titles = (batch["title"] for batch in dataset["train"].select_columns(["title"]).iter(batch_size=10_000))
    return train_word_tokenizer(titles, data_args.max_vocabulary_words, data_args.min_word_frequency, keep_numbers)


def architecture_fields(model: str) -> set[str]:
    """The `ModelArguments` fields that shape `--model` (none for a pretrained transformer: its config does)."""
    config_class = MODELS[model].config_class
    if not dataclasses.is_dataclass(config_class):  # AutoConfig: the checkpoint's config decides
        return set()
    return {f.name for f in dataclasses.fields(config_class)} & ARCHITECTURE_FIELDS


def build_tokenizer(model_args: ModelArguments, data_args: DataTrainingArguments, dataset: DatasetDict, data_dir):
    """A new run's tokenizer: meli-hf's word tokenizer for the baselines, the checkpoint's own for BETO."""
    if MODELS[model_args.model].tokenizer == "word":
        return build_word_tokenizer(dataset, data_dir, data_args)
    return load_pretrained(
        AutoTokenizer.from_pretrained,
        model_args.model_name_or_path,
        "--model_name_or_path",
        trust_remote_code=model_args.trust_remote_code,
    )


def load_model_word_vectors(model_args: ModelArguments, tokenizer, seed: int) -> WordVectors | None:
    """`--word_vectors` for the tokenizer's words, read once per run (a search builds many models from them)."""
    return load_word_vectors(model_args.word_vectors, tokenizer.get_vocab(), seed) if model_args.word_vectors else None


def build_model(model_args: ModelArguments, tokenizer, id2label: dict[int, str], vectors: WordVectors | None = None):
    """A new model of `--model` for these labels; word vectors are copied in after initialisation."""
    spec = MODELS[model_args.model]
    label2id = {name: i for i, name in id2label.items()}
    if spec.tokenizer == "pretrained":
        # Float32 master weights whatever the checkpoint's stored dtype: `--bf16`/`--fp16` are autocast on top.
        with new_head_reported_in_one_line(len(id2label)):
            return load_pretrained(
                AutoModelForSequenceClassification.from_pretrained,
                model_args.model_name_or_path,
                "--model_name_or_path",
                trust_remote_code=model_args.trust_remote_code,
                num_labels=len(id2label),
                id2label=id2label,
                label2id=label2id,
                dtype=torch.float32,
            )
    architecture = {
        name: getattr(model_args, name)
        for name in architecture_fields(model_args.model)
        if getattr(model_args, name) is not None
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
    check_model_fits_in_memory(spec.model_class, config, architecture)
    model = spec.model_class(config)
    if vectors is not None:
        model.load_word_vectors(torch.from_numpy(vectors.matrix))
    return model


def check_model_fits_in_memory(model_class, config, sizes: dict) -> None:
    """Tables sized by flags (buckets, vocabulary, widths) can ask for more memory than the machine has, and then
    fail in the allocator, or get the process killed mid-run, without a word on which flag asked. Counted on the meta
    device, which allocates nothing."""
    with torch.device("meta"):
        model = model_class(config)
    # A TF-IDF model that drops rare features allocates its weight matrix once `fit_idf` knows how many it keeps.
    deferred = model.classifier.weight if getattr(model, "weights_await_fit", False) else None
    weights = sum(parameter.numel() for parameter in model.parameters() if parameter is not deferred)
    # Float32 weights with AdamW's two moments, and the buffers.
    needed = 3 * 4 * weights + sum(buffer.numel() * buffer.element_size() for buffer in model.buffers())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > memory:
        given = [f"--{name} {value}" for name, value in sizes.items() if type(value) is int]
        raise MeliError(
            f"with {', '.join([*given, f'{config.vocab_size:,} words'])} the model needs {needed / 2**30:.1f} GiB "
            f"to train (float32 weights, AdamW's two moments and buffers), more than this machine's "
            f"{memory / 2**30:.1f} GiB: lower those sizes or --max_vocabulary_words"
        )


def build_collator(model: str, tokenizer: PreTrainedTokenizerBase):
    """Word ids are padded in one vectorised pass; subword inputs go through the tokenizer's own padding."""
    if MODELS[model].tokenizer == "word":
        return WordIdCollator(pad_token_id=tokenizer.pad_token_id)
    return DataCollatorWithPadding(tokenizer)
