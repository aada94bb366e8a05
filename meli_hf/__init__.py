"""meli-hf: MeLi Data Challenge 2019 title classification on the Hugging Face stack."""

from transformers import AutoConfig, AutoModelForSequenceClassification

from .configuration_meli import MeliCNNConfig, MeliLSTMConfig, MeliMLPConfig, MeliTfidfConfig
from .data import MeliDataError, load_meli
from .embeddings import WordVectors, load_word_vectors
from .modeling_meli import (
    MeliCNNForSequenceClassification,
    MeliLSTMForSequenceClassification,
    MeliMLPForSequenceClassification,
    MeliTfidfForSequenceClassification,
)
from .predict import Predictor
from .tokenization import train_word_tokenizer, word_tokenizer_from_vocabulary

for _config, _model in (
    (MeliMLPConfig, MeliMLPForSequenceClassification),
    (MeliCNNConfig, MeliCNNForSequenceClassification),
    (MeliLSTMConfig, MeliLSTMForSequenceClassification),
    (MeliTfidfConfig, MeliTfidfForSequenceClassification),
):
    AutoConfig.register(_config.model_type, _config)
    AutoModelForSequenceClassification.register(_config, _model)
    # Saved checkpoints carry `auto_map` and these files, so they load with trust_remote_code without meli_hf.
    _config.register_for_auto_class()
    _model.register_for_auto_class("AutoModelForSequenceClassification")

__all__ = [
    "MeliDataError",
    "MeliCNNConfig",
    "MeliCNNForSequenceClassification",
    "MeliLSTMConfig",
    "MeliLSTMForSequenceClassification",
    "MeliMLPConfig",
    "MeliMLPForSequenceClassification",
    "MeliTfidfConfig",
    "MeliTfidfForSequenceClassification",
    "Predictor",
    "WordVectors",
    "load_meli",
    "load_word_vectors",
    "train_word_tokenizer",
    "word_tokenizer_from_vocabulary",
]
