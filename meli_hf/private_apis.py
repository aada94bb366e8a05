"""Every use of a private API of transformers, datasets or argparse, in one place: where a library changes one of
them, tests/test_private_apis.py fails and names it, instead of a run going wrong somewhere else.

Duck-typed: this module imports none of those libraries, so any layer may use it."""

from __future__ import annotations


def has_indices_mapping(dataset) -> bool:
    """Whether a `datasets.Dataset` reads its rows through an indices mapping (after `select`, `shuffle`, `filter`),
    which makes every batched read a gather over the whole table (`Dataset._indices`)."""
    return dataset._indices is not None


def dataset_fingerprint(dataset) -> str:
    """The fingerprint `datasets` keys a dataset's cache files by, from which derived caches are keyed
    (`Dataset._fingerprint`)."""
    return dataset._fingerprint


def parser_actions(parser) -> list:
    """The actions of an `argparse.ArgumentParser`, to change how a flag parses after `HfArgumentParser` made it
    (`ArgumentParser._actions`)."""
    return parser._actions


class TrainerHooks:
    """The `Trainer`'s private hooks that `MeliTrainer` changes, each handed to a public method of the subclass
    (`clip_gradients`, `total_gradient_norm`, `train_sampler`), whose default is the Trainer's own
    (`library_clip_gradients`, ...). Put before `Trainer` among a subclass's bases."""

    def _clip_grad_norm(self, model):
        return self.clip_gradients(model)

    def _get_grad_norm(self, model, grad_norm=None):
        return self.total_gradient_norm(model, grad_norm)

    def _get_train_sampler(self, train_dataset=None):
        return self.train_sampler(train_dataset)

    def library_clip_gradients(self, model):
        return super()._clip_grad_norm(model)

    def library_total_gradient_norm(self, model, grad_norm=None):
        return super()._get_grad_norm(model, grad_norm)

    def library_train_sampler(self, train_dataset=None):
        return super()._get_train_sampler(train_dataset)
