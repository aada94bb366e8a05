"""Trained checkpoints at work: the `Predictor`, record readers and writers, compact copies and the HTTP service.
Imports no `datasets`, `evaluate`, scikit-learn or matplotlib."""
