"""Runs: arguments, builders, the Trainer and its optimizer, distillation, checkpoints, tracking, the model card,
the run itself and hyperparameter search."""
