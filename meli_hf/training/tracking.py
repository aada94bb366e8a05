"""Experiment tracking: where a run's MLflow records go, and the one MLflow run that spans training and the final
evaluations."""

from __future__ import annotations

import contextlib
from pathlib import Path


def mlflow_store(output_dir: str | Path) -> str:
    """Where a run's MLflow records go when MLFLOW_TRACKING_URI does not say: a SQLite store in its output folder,
    not in whatever folder the user stands in."""
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


@contextlib.contextmanager
def mlflow_run(training_args):
    """One MLflow run, named after the output folder unless `--run_name` says otherwise, for training and the final
    evaluations (the callback alone closes its run at train end)."""
    if "mlflow" not in training_args.report_to or training_args.process_index != 0:
        yield
        return
    import mlflow

    Path(training_args.output_dir).mkdir(parents=True, exist_ok=True)  # the default store lies in it
    with mlflow.start_run(run_name=training_args.run_name or Path(training_args.output_dir).name):
        yield
