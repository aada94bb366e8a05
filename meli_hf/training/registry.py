"""One entry per architecture that `--model` names: its model type, the flags that shape it, its tokenizer kind,
its training defaults and its search space. Plain data, so that parsing flags imports no model code; the classes
that build each architecture are in `builders`. No if-chains over architecture names elsewhere."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

BETO = "dccuchile/bert-base-spanish-wwm-cased"


@dataclass(frozen=True)
class ModelSpec:
    """How `--model NAME` is trained: its config's `model_type` (None: a pretrained transformer, whose checkpoint
    says), the `ModelArguments` fields that are fields of its config, its tokenizer kind and its training defaults."""

    model_type: str | None
    architecture: frozenset[str]
    tokenizer: str  # "word": meli_hf's word-level tokenizer; "pretrained": the checkpoint's own
    learning_rate: float
    batch_size: int
    num_train_epochs: float
    train_sampling_strategy: str
    label_smoothing_factor: float
    word_embeddings: bool  # starts from word vectors: what `--word_vectors` can initialise
    search_space: dict  # `--hp_search`'s default space, in the format of an `--hp_space` file
    architecture_defaults: dict = dataclasses.field(default_factory=dict)  # `--model`'s defaults of shape flags
    fixed: dict = dataclasses.field(default_factory=dict)  # config values of every new model: the one measured way


# The flags that shape every word-vector network: its embeddings, its head and the linear part beside it.
WORD_NETWORK = frozenset(
    {
        "embedding_dim",
        "freeze_embeddings",
        "hidden_layers",
        "dropout",
        "linear_bigram_buckets",
        "linear_logit_scale",
    }
)


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


# The linear part beside each word network (what the TF-IDF model learns, inside the checkpoint), and how its
# prediction joins the network's: each part trained on its own loss, the prediction their normalised product. On the
# real sample it lifts each network (BENCHMARKS.md); `sum` (one loss) and `mixture` (the mean) scored lower, and so did
# the LSTM's `last` pooling against `max`: checkpoints saved with them load and predict as before.
LINEAR_PART = {"linear_bigram_buckets": 262_144}
PRODUCT = {"linear_combination": "product"}
HIDDEN_LAYERS = {"choices": [[512], [1024], [2048], [1024, 1024]]}
DROPOUT = {"low": 0.0, "high": 0.5}

# The best measured settings on the real MeLi sample (bench/sweep, BENCHMARKS.md, docs/training.md): with title
# vectors and the linear part, the LSTM peaks at 6 epochs and the CNN at 4, all three with label smoothing 0.1.
# Length-grouped batches train the LSTM faster on CPU at the same accuracy (bench/training_throughput.py). The
# TF-IDF model peaks within two epochs and then overfits its rare features.
MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(
        "meli-mlp",
        WORD_NETWORK,
        "word",
        2e-3,
        256,
        10,
        "random",
        0.1,
        word_embeddings=True,
        search_space=search_space((5e-4, 8e-3), (4, 12), hidden_layers=HIDDEN_LAYERS, dropout=DROPOUT),
        architecture_defaults=LINEAR_PART,
        fixed=PRODUCT,
    ),
    "cnn": ModelSpec(
        "meli-cnn",
        WORD_NETWORK | {"filter_widths", "num_filters"},
        "word",
        1e-3,
        256,
        4,
        "random",
        0.1,
        word_embeddings=True,
        search_space=search_space(
            (3e-4, 3e-3),
            (4, 10),
            num_filters={"choices": [128, 256, 512]},
            filter_widths={"choices": [[2, 3], [2, 3, 4], [1, 2, 3, 4]]},
            hidden_layers=HIDDEN_LAYERS,
            dropout=DROPOUT,
        ),
        architecture_defaults=LINEAR_PART,
        fixed=PRODUCT,
    ),
    "lstm": ModelSpec(
        "meli-lstm",
        WORD_NETWORK | {"lstm_hidden_size", "lstm_num_layers", "bidirectional"},
        "word",
        1e-3,
        256,
        6,
        "group_by_length",
        0.1,
        word_embeddings=True,
        search_space=search_space(
            (3e-4, 3e-3),
            (4, 10),
            lstm_hidden_size={"choices": [256, 512, 768]},
            hidden_layers=HIDDEN_LAYERS,
            dropout=DROPOUT,
        ),
        architecture_defaults=LINEAR_PART,
        fixed=PRODUCT | {"lstm_pooling": "max"},
    ),
    "tfidf": ModelSpec(
        "meli-tfidf",
        frozenset({"bigram_buckets", "min_document_frequency"}),
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
        None,
        frozenset(),
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


def architecture_fields(model: str) -> frozenset[str]:
    """The `ModelArguments` fields that shape `--model` (none for a pretrained transformer: its config does)."""
    return MODELS[model].architecture
