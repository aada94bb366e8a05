"""Where `MeliTrainingArguments` lived before the layered layout: the `training_args.bin` files that runs saved then
pickle this path, and `torch.load` finds the class here."""

from .training.arguments import MeliTrainingArguments

__all__ = ["MeliTrainingArguments"]
