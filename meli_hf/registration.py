"""The meli-hf model classes in the Auto mapping before their module is imported.

Defining a `PreTrainedModel` subclass imports transformers' modeling stack, seconds on 2 cores, which a process that
only reads a config, tokenizes or parses flags never needs. `import meli_hf` therefore registers, for each config
class, a `LazyModelClass`: the Auto classes read its `config_class` and `__name__`, and anything else they ask of it
(`from_pretrained`, `_from_config`, ...) imports `meli_hf.models.modeling_meli` and answers from the real class.
"""

from __future__ import annotations

import importlib


class LazyModelClass:
    """Stands for the class `name` of `meli_hf.models.modeling_meli`, whose config class is `config_class`."""

    def __init__(self, name: str, config_class: type):
        self.__name__ = name
        self.config_class = config_class

    def resolve(self) -> type:
        return getattr(importlib.import_module(".models.modeling_meli", __package__), self.__name__)

    def __getattr__(self, attribute: str):
        return getattr(self.resolve(), attribute)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<lazy {__package__}.models.modeling_meli.{self.__name__}>"
