"""The tokenizer, model and collator of a new run, from explicit values (the run and the search gather them from
the arguments): each `--model` of the registry built from its config and model classes."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from datasets import DatasetDict
from transformers import (
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
from ..hub import load_pretrained, load_with_new_head
from ..models.configuration_meli import MeliCNNConfig, MeliLSTMConfig, MeliMLPConfig, MeliTfidfConfig
from ..models.modeling_meli import (
    MeliCNNForSequenceClassification,
    MeliLSTMForSequenceClassification,
    MeliMLPForSequenceClassification,
    MeliTfidfForSequenceClassification,
)
from .registry import MODELS

# The config and model classes of each `--model` that meli-hf defines (a pretrained transformer brings its own).
MODEL_CLASSES = {
    "mlp": (MeliMLPConfig, MeliMLPForSequenceClassification),
    "cnn": (MeliCNNConfig, MeliCNNForSequenceClassification),
    "lstm": (MeliLSTMConfig, MeliLSTMForSequenceClassification),
    "tfidf": (MeliTfidfConfig, MeliTfidfForSequenceClassification),
}


def build_word_tokenizer(
    dataset: DatasetDict,
    data_dir: Path,
    *,
    language: str | None,
    keep_numbers: bool | None,
    max_vocabulary_words: int,
    min_word_frequency: int,
):
    """The course's vocabulary when the data carries word ids, otherwise one trained on the train titles (numbers
    kept unless `keep_numbers` is false)."""
    course_files = "input_ids" in dataset["train"].column_names
    keep = keeps_numbers(keep_numbers, data_dir, course_files)  # refuses `keep_numbers` for course files
    if course_files:
        language = language or "spanish"
        vocabulary = find_course_vocabulary(find_source_files(data_dir, language), language)
        if vocabulary is None:
            raise MeliDataError(data_dir, None, None, f"no {language}_token_to_index.json.gz beside the course files")
        return word_tokenizer_from_vocabulary(read_token_to_index(vocabulary))
    titles = (batch["title"] for batch in dataset["train"].select_columns(["title"]).iter(batch_size=10_000))
    return train_word_tokenizer(titles, max_vocabulary_words, min_word_frequency, keep)


def load_pretrained_tokenizer(model_name_or_path: str, trust_remote_code: bool):
    """A pretrained transformer's own tokenizer (`--model_name_or_path`)."""
    return load_pretrained(
        AutoTokenizer.from_pretrained, model_name_or_path, "--model_name_or_path", trust_remote_code=trust_remote_code
    )


def load_model_word_vectors(path: str | None, tokenizer, seed: int) -> WordVectors | None:
    """`--word_vectors` for the tokenizer's words, read once per run (a search builds many models from them)."""
    return load_word_vectors(path, tokenizer.get_vocab(), seed) if path else None


def build_model(
    model: str,
    tokenizer,
    id2label: dict[int, str],
    architecture: dict,
    vectors: WordVectors | None = None,
    *,
    model_name_or_path: str | None = None,
    trust_remote_code: bool = False,
):
    """A new model of `--model` for these labels, shaped by `architecture` (config fields); word vectors are copied
    in after initialisation. A pretrained transformer (`model_name_or_path`) gets a new classification head."""
    if MODELS[model].tokenizer == "pretrained":
        # Float32 master weights whatever the checkpoint's stored dtype: `--bf16`/`--fp16` are autocast on top.
        return load_with_new_head(
            AutoModelForSequenceClassification.from_pretrained,
            model_name_or_path,
            "--model_name_or_path",
            trust_remote_code=trust_remote_code,
            num_labels=len(id2label),
            id2label=id2label,
            label2id={name: i for i, name in id2label.items()},
            dtype=torch.float32,
        )
    if vectors is not None:
        architecture = architecture | {"embedding_dim": vectors.matrix.shape[1]}
    config = new_config(model, tokenizer, id2label, architecture)
    built = MODEL_CLASSES[model][1](config)
    if vectors is not None:
        built.load_word_vectors(torch.from_numpy(vectors.matrix))
    return built


def new_config(model: str, tokenizer, id2label: dict[int, str], architecture: dict):
    """The config of a new word model of `--model` for this tokenizer and these labels, once its size is known to
    fit in memory (checked before anything is built or learnt for it)."""
    config_class, model_class = MODEL_CLASSES[model]
    label2id = {name: i for i, name in id2label.items()}
    config = config_class(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        id2label=id2label,
        label2id=label2id,
        **architecture,
    )
    check_model_fits_in_memory(model_class, config, architecture)
    return config


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
