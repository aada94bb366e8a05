"""The meli-hf architectures in transformers' Auto classes, registered when those classes are first imported.

Importing an Auto class makes transformers index every model package it has, and defining a `PreTrainedModel`
subclass imports its modeling stack: seconds on 2 cores that a process parsing flags, reading data or serving a
torch-free copy never needs. So `import meli_hf` registers nothing itself. Where transformers' Auto modules are
already imported it registers at once; otherwise a finder on `sys.meta_path` registers right after each of them is
imported, and leaves once both are. Model classes are registered as `LazyModelClass`es: the Auto classes read their
`config_class` and `__name__`, and anything else they ask of one imports `meli_hf.models.modeling_meli`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

CONFIG_AUTO_MODULE = "transformers.models.auto.configuration_auto"
MODEL_AUTO_MODULE = "transformers.models.auto.modeling_auto"
# Config class name -> model class name, both of meli_hf.models.
ARCHITECTURES = {
    "MeliMLPConfig": "MeliMLPForSequenceClassification",
    "MeliCNNConfig": "MeliCNNForSequenceClassification",
    "MeliLSTMConfig": "MeliLSTMForSequenceClassification",
    "MeliTfidfConfig": "MeliTfidfForSequenceClassification",
}


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


def config_classes() -> list[type]:
    configuration = importlib.import_module(".models.configuration_meli", __package__)
    return [getattr(configuration, name) for name in ARCHITECTURES]


def register_configs() -> None:
    auto_config = sys.modules[CONFIG_AUTO_MODULE].AutoConfig
    for config in config_classes():
        auto_config.register(config.model_type, config, exist_ok=True)


def register_models() -> None:
    auto_model = sys.modules[MODEL_AUTO_MODULE].AutoModelForSequenceClassification
    for config in config_classes():
        auto_model.register(config, LazyModelClass(ARCHITECTURES[config.__name__], config), exist_ok=True)


REGISTER_AFTER = {CONFIG_AUTO_MODULE: register_configs, MODEL_AUTO_MODULE: register_models}


class RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when an Auto module is imported, it hands over the usual spec with a loader that
    registers the meli-hf classes once the module has run."""

    def __init__(self, waiting: dict):
        self.waiting = dict(waiting)

    def find_spec(self, name, path, target=None):
        if name not in self.waiting:
            return None
        register = self.waiting.pop(name)
        if not self.waiting:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module

        def run_then_register(module):
            run_module(module)
            register()

        spec.loader.exec_module = run_then_register
        return spec


def register_with_auto_classes() -> None:
    """Register now where an Auto module is imported, and when it is imported otherwise (once per process)."""
    if any(isinstance(finder, RegisterAfterImport) for finder in sys.meta_path):
        return
    waiting = {}
    for module, register in REGISTER_AFTER.items():
        if module in sys.modules:
            register()
        else:
            waiting[module] = register
    if waiting:
        sys.meta_path.insert(0, RegisterAfterImport(waiting))
