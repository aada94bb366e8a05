"""Configurations of the word-embedding baselines (MLP, CNN, LSTM) of the MeLi 2019 course."""

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
    """

    vocab_size: int = 50002
    embedding_dim: int = 300
    freeze_embeddings: bool = False
    hidden_layers: list[int] | tuple[int, ...] = (1024,)
    dropout: float | int = 0.3
    initializer_range: float = 0.02
    pad_token_id: int | None = 0


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


__all__ = ["MeliWordConfig", "MeliMLPConfig", "MeliCNNConfig", "MeliLSTMConfig"]
