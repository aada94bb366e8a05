"""meli_hf.private_apis: each private API of transformers, datasets and argparse that meli-hf uses still exists and
means what it meant; a library upgrade that changes one fails here, by name."""

import argparse
import inspect

from datasets import Dataset
from transformers import Trainer

from meli_hf.private_apis import TrainerHooks, dataset_fingerprint, has_indices_mapping, parser_actions


def test_indices_mapping_is_seen_after_select_and_gone_after_flattening():
    dataset = Dataset.from_dict({"x": [1, 2, 3]})
    assert not has_indices_mapping(dataset)
    subset = dataset.select([2, 0])
    assert has_indices_mapping(subset)
    assert not has_indices_mapping(subset.flatten_indices())


def test_fingerprint_is_a_string_that_changes_with_the_data():
    dataset = Dataset.from_dict({"x": [1, 2, 3]})
    fingerprint = dataset_fingerprint(dataset)
    assert isinstance(fingerprint, str) and fingerprint
    assert dataset_fingerprint(dataset.map(lambda row: {"x": row["x"] + 1})) != fingerprint


def test_parser_actions_are_the_actions_that_parse_flags():
    parser = argparse.ArgumentParser()
    parser.add_argument("--flag", type=int)
    (action,) = [action for action in parser_actions(parser) if "--flag" in action.option_strings]
    action.nargs, action.const = "?", 7
    assert parser.parse_args(["--flag"]).flag == 7


def test_the_trainer_hooks_exist_with_their_signatures_and_are_called_in_training():
    expected = {
        "_clip_grad_norm": ["self", "model"],
        "_get_grad_norm": ["self", "model", "grad_norm"],
        "_get_train_sampler": ["self", "train_dataset"],
    }
    source = inspect.getsource(Trainer)
    for name, parameters in expected.items():
        assert list(inspect.signature(getattr(Trainer, name)).parameters) == parameters, name
        assert f"self.{name}(" in source or f"=self.{name}," in source, f"Trainer no longer calls {name}"
        assert name in vars(TrainerHooks), name
