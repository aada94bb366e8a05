"""What users saved under the flat layout still loads under the layered one."""

from pathlib import Path

import torch

from meli_hf.training.arguments import MeliTrainingArguments

FIXTURES = Path(__file__).parent / "fixtures" / "old_layout"


def test_training_arguments_pickled_by_the_flat_layout_load():
    """A run's `training_args.bin` saved before the move pickles `meli_hf.training_args.MeliTrainingArguments`."""
    arguments = torch.load(FIXTURES / "training_args.bin", weights_only=False)
    assert isinstance(arguments, MeliTrainingArguments)
    assert arguments.num_train_epochs == 10 and arguments.learning_rate == 2e-3
