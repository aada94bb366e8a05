"""Configurations of the baselines of the MeLi 2019 course: the word-embedding MLP, CNN and LSTM, and the TF-IDF
linear classifier."""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class MeliWordConfig(PreTrainedConfig):
    r"""
    Shared part of the baselines: a word-embedding layer, an encoder (in the subclasses) and a classification head.

    Args:
        vocab_size (`int`): number of word ids of the word-level tokenizer (`[PAD]`=0, `[UNK]`=1 included).
        embedding_dim (`int`): size of a word vector (300 for the SBW vectors).
        freeze_embeddings (`bool`): keep the (pretrained) word vectors fixed during training.
        hidden_layers (`list[int]`): sizes of the fully connected layers between encoder and output layer.
        dropout (`float`): dropout probability after the embeddings and each hidden layer; off in eval mode.
        initializer_range (`float`): standard deviation of the normal initialisation of trained weights.
        pad_token_id (`int`): id of `[PAD]`; its embedding is zero and never pooled.
        linear_bigram_buckets (`int`): 0: the network alone. Otherwise a linear classifier over the title's words and
            its word bigrams hashed into this many buckets adds its logits to the network's (wide & deep): one weight
            per feature and category, `(vocab_size + linear_bigram_buckets) * num_labels` in all.
        linear_combination (`str`): `"sum"`: the linear part's logits are added to the network's, one model trained
            on one loss (wide & deep); `"mixture"`: each part is trained on its own loss (the same labels and
            teacher) and predicts the mean of the two parts' probabilities, as an ensemble of two models would;
            `"product"`: trained as `"mixture"`, it predicts their normalised product (the softmax of the mean of
            their log-probabilities, a product of experts): a category that one part rules out cannot win on the
            other's confidence alone (better than `"mixture"` on the real sample: BENCHMARKS.md).
        linear_logit_scale (`float`): the linear part's weights are stored divided by this, so that Adam moves its
            logits this many times faster than the network's (Adam's step does not depend on a gradient's size).
        int8_tables (`bool`): the word embeddings and the linear part's weights, the two tables that make up most of
            a checkpoint, are stored as int8 with one float scale per row (`scripts/compact.py`): a quarter of the
            size. Such a model predicts; it does not train.
    """

    vocab_size: int = 50002
    embedding_dim: int = 300
    freeze_embeddings: bool = False
    hidden_layers: list[int] | tuple[int, ...] = (1024,)
    dropout: float | int = 0.3
    initializer_range: float = 0.02
    pad_token_id: int | None = 0
    linear_bigram_buckets: int = 0
    linear_combination: Literal["sum", "mixture", "product"] = "sum"
    linear_logit_scale: float | int = 10.0
    int8_tables: bool = False

    @property
    def trains_parts_apart(self) -> bool:
        """Whether the network and the linear part each have their own loss (the prediction combines them)."""
        return bool(self.linear_bigram_buckets) and self.linear_combination != "sum"


@strict
class MeliMLPConfig(MeliWordConfig):
    r"""
    MLP baseline: the mean of the word vectors of a title (padding masked out) feeds the hidden layers.

    Args:
        bigram_buckets (`int`): hashed buckets of word-bigram vectors averaged with the word vectors, as fastText's
            `wordNgrams=2`; 0 averages the words only.
    """

    model_type = "meli-mlp"

    bigram_buckets: int = 0


@strict
class MeliCNNConfig(MeliWordConfig):
    r"""
    CNN baseline: 1-D convolutions of several widths over the word vectors, max-pooled over time.

    Args:
        filter_widths (`list[int]`): widths (in words) of the convolution filters.
        num_filters (`int`): filters per width.
    """

    model_type = "meli-cnn"

    filter_widths: list[int] | tuple[int, ...] = (2, 3, 4)
    num_filters: int = 256


@strict
class MeliLSTMConfig(MeliWordConfig):
    r"""
    LSTM baseline: a (bidirectional) LSTM over packed sequences; its pooled outputs feed the hidden layers.

    Args:
        lstm_hidden_size (`int`): hidden size of each LSTM direction.
        lstm_num_layers (`int`): stacked LSTM layers.
        bidirectional (`bool`): read titles in both directions.
        lstm_pooling (`str`): `"last"`: the last hidden state of each direction; `"max"`: the maximum of the top
            layer's outputs over the title's words. Checkpoints saved before the field existed load as `"last"`,
            the way they were trained.
    """

    model_type = "meli-lstm"

    lstm_hidden_size: int = 512
    lstm_num_layers: int = 1
    bidirectional: bool = True
    lstm_pooling: Literal["last", "max"] = "last"


@strict
class MeliTfidfConfig(PreTrainedConfig):
    r"""
    TF-IDF baseline: a linear classifier (multinomial logistic regression) over the TF-IDF vector of a title's words
    and word bigrams, the bag-of-n-grams model of scikit-learn's TF-IDF + SGD peer. Its weights are a full
    category-by-feature matrix, not the MLP's low-rank word vectors, so its errors differ from theirs.

    Args:
        vocab_size (`int`): number of word ids of the word-level tokenizer (`[PAD]`=0, `[UNK]`=1 included).
        bigram_buckets (`int`): word bigrams are hashed into this many features, as fastText's `wordNgrams=2`;
            0 keeps the words only. Each kept feature holds one weight per category.
        min_document_frequency (`int`): features held by fewer training titles are dropped when the idf is fitted
            (scikit-learn's `min_df`): rare features are noise to a linear model, and each costs a weight row.
            1 keeps every feature, unseen ones included.
        num_features (`int`, *optional*): rows of the weight matrix, the features kept by the fit; `None` before a
            fit that drops any: all `vocab_size + bigram_buckets` features.
        pad_token_id (`int`): id of `[PAD]`, never a feature.
    """

    model_type = "meli-tfidf"

    vocab_size: int = 50002
    bigram_buckets: int = 262144
    min_document_frequency: int = 5
    num_features: int | None = None
    pad_token_id: int | None = 0


# Saved configs carry `auto_map` and this file, so they load with trust_remote_code=True without meli_hf.
for _config in (MeliMLPConfig, MeliCNNConfig, MeliLSTMConfig, MeliTfidfConfig):
    _config.register_for_auto_class()

__all__ = ["MeliWordConfig", "MeliMLPConfig", "MeliCNNConfig", "MeliLSTMConfig", "MeliTfidfConfig"]
