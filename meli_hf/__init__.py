"""meli-hf: MeLi Data Challenge 2019 title classification on the Hugging Face stack.

`import meli_hf` registers the architectures with transformers' Auto classes (as soon as those are imported:
`meli_hf.registration`) and imports nothing else: each name below is imported on first use, so a process pays only
for what it uses (`predict.py` never imports `datasets`, `evaluate` or matplotlib, and the model code is imported
when a model is first built or loaded).
"""

import importlib

from .registration import register_with_auto_classes

register_with_auto_classes()

# Public name -> the module that defines it, imported on first access.
_LAZY_NAMES = {
    "MeliCNNConfig": "models.configuration_meli",
    "MeliLSTMConfig": "models.configuration_meli",
    "MeliMLPConfig": "models.configuration_meli",
    "MeliTfidfConfig": "models.configuration_meli",
    "MeliCNNForSequenceClassification": "models.modeling_meli",
    "MeliLSTMForSequenceClassification": "models.modeling_meli",
    "MeliMLPForSequenceClassification": "models.modeling_meli",
    "MeliTfidfForSequenceClassification": "models.modeling_meli",
    "MeliDataError": "errors",
    "load_meli": "data.loading",
    "WordVectors": "data.embeddings",
    "load_word_vectors": "data.embeddings",
    "Predictor": "inference.predictor",
    "OnnxPredictor": "inference.onnx_predictor",
    "train_word_tokenizer": "data.tokenization",
    "word_tokenizer_from_vocabulary": "data.tokenization",
}


def __getattr__(name: str):
    if name not in _LAZY_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))


__all__ = list(_LAZY_NAMES)
