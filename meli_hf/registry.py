"""One entry per architecture that `--model` names: its config and model classes, its tokenizer kind and its
training defaults, and the builders of a new run's tokenizer, model and collator. No if-chains over architecture
names elsewhere."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from datasets import DatasetDict
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
)

from .collator import WordIdCollator
from .configuration_meli import MeliCNNConfig, MeliLSTMConfig, MeliMLPConfig, MeliTfidfConfig
from .data import find_course_vocabulary, find_source_files, read_token_to_index
from .embeddings import load_word_vectors
from .errors import MeliDataError, MeliError
from .integrations import load_pretrained, new_head_reported_in_one_line
from .modeling_meli import (
    MeliCNNForSequenceClassification,
    MeliLSTMForSequenceClassification,
    MeliMLPForSequenceClassification,
    MeliTfidfForSequenceClassification,
)
from .tokenization import train_word_tokenizer, word_tokenizer_from_vocabulary

if TYPE_CHECKING:
    from .training_args import DataTrainingArguments, ModelArguments

BETO = "dccuchile/bert-base-spanish-wwm-cased"


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


# Tuned on the real MeLi sample (bench/sweep, BENCHMARKS.md): validation balanced accuracy still rose at the last
# of 10 MLP and 8 LSTM/CNN epochs, and the MLP gained from 2e-3 and from label smoothing 0.1. Length-grouped
# batches train the LSTM 1.4x faster on CPU at the same accuracy (bench/training_throughput.py). The TF-IDF model
# peaks within two epochs at Adam's learning rate 0.1 and then overfits its rare features.
MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(
        MeliMLPConfig, MeliMLPForSequenceClassification, "word", 2e-3, 256, 10, "random", 0.1, word_embeddings=True
    ),
    "cnn": ModelSpec(
        MeliCNNConfig, MeliCNNForSequenceClassification, "word", 1e-3, 256, 8, "random", 0.0, word_embeddings=True
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
    ),
    "tfidf": ModelSpec(
        MeliTfidfConfig, MeliTfidfForSequenceClassification, "word", 0.1, 1024, 2, "random", 0.0, word_embeddings=False
    ),
    "beto": ModelSpec(
        AutoConfig, AutoModelForSequenceClassification, "pretrained", 5e-5, 32, 3, "random", 0.0, word_embeddings=False
    ),
}


def has_word_embeddings(model: str) -> bool:
    """Whether `--model` starts from word vectors, the only models `--word_vectors` can initialise."""
    return MODELS[model].word_embeddings


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
        with new_head_reported_in_one_line(len(id2label)):
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
        if name in {f.name for f in dataclasses.fields(spec.config_class)} and getattr(model_args, name) is not None
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
