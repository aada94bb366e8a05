"""`scripts/train.py --hp_search optuna`: `Trainer.hyperparameter_search` over training and architecture arguments.

The data, tokenizer and word vectors are built once; each trial gets a new model from `model_init` and its training
arguments from `hp_space`, both drawn from one search space (`--model`'s default, `ModelSpec.search_space`, or an
`--hp_space` file of the same format). A trial scores what a run of its arguments would keep: its best validation
`--metric_for_best_model` when runs keep their best model (`--load_best_model_at_end`, the default), else the last.
A search leaves `hp_search.json` (every trial, its arguments, evaluations and score) and `best_run.json` (the best
trial's run as an arguments file, which `scripts/train.py best_run.json` trains again to the same score).
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import json
import logging
import math
import time
from pathlib import Path

from huggingface_hub.errors import StrictDataclassError
from transformers import TrainerCallback, TrainingArguments, enable_full_determinism, set_seed

from ..errors import MeliError
from ..files import atomic_output, read_json_or_yaml
from ..models.modeling_meli import MeliTfidfForSequenceClassification
from .arguments import (
    DataTrainingArguments,
    HyperparameterSearchArguments,
    MeliTrainingArguments,
    ModelArguments,
)
from .builders import MODEL_CLASSES, build_model
from .checkpoints import (
    BEST_RUN_FILE,
    BEST_RUN_FOLDER,
    SEARCH_FILE,
    asks_resume,
    check_output_dir,
    remove_previous_run,
    set_aside_previous_run,
)
from .parsing import parse_training_file, run_arguments
from .registry import MODELS, architecture_fields
from .run import (
    build_trainer,
    fit_idf,
    planned_steps,
    prepare_run,
    run_inputs,
    run_training,
    settled_training_arguments,
)

logger = logging.getLogger(__name__)

SQLITE_URL = "sqlite:///"
RANGE_KEYS = {"low", "high", "log", "step"}


def load_search_space(path: str | Path) -> dict:
    """An `--hp_space` file: a mapping of argument names to `{low, high[, log][, step]}` or `{choices: [...]}`."""
    space = read_json_or_yaml(path, f"--hp_space {path}")
    if not isinstance(space, dict) or not space:
        raise MeliError(f"--hp_space {path}: expected a mapping of argument names to ranges or choices")
    return space


def is_searchable_training_argument(training_args: TrainingArguments, name: str) -> bool:
    """Training arguments a trial can set: the numbers, switches and named choices (optimizer, schedule)."""
    names = {f.name for f in dataclasses.fields(training_args) if f.init}
    return name in names and isinstance(getattr(training_args, name), (bool, int, float, enum.Enum))


def is_float_range(entry: dict) -> bool:
    return "choices" not in entry and not all(
        isinstance(entry[key], int) and not isinstance(entry[key], bool) for key in ("low", "high")
    )


def check_search_space(
    space: dict, source: str, model_args: ModelArguments, training_args: MeliTrainingArguments
) -> None:
    """Each entry names an argument of `--model` and a range or choices whose every value that argument accepts, so
    that no trial trains on a setting a run would refuse."""
    architecture = architecture_fields(model_args.model)
    for name, entry in space.items():
        where = f"{source}: {name}"
        if not isinstance(entry, dict):
            raise MeliError(f"{where}: expected {{low: ..., high: ...}} or {{choices: [...]}}")
        if "choices" in entry:
            values = entry["choices"]
            if set(entry) != {"choices"} or not isinstance(values, list) or not values:
                raise MeliError(f"{where}: choices must be a non-empty list, alone")
        else:
            if not {"low", "high"} <= set(entry) <= RANGE_KEYS:
                raise MeliError(f"{where}: a range has low and high (and optionally log, step), got {sorted(entry)}")
            low, high = entry["low"], entry["high"]
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
            if not numbers or not low < high:
                raise MeliError(f"{where}: low ({low}) and high ({high}) must be numbers, low below high")
            if entry.get("log") and low <= 0:
                raise MeliError(f"{where}: a log-scale range starts above 0, not at {low}")
            values = [low, high]
        if name in architecture:
            for value in values:
                _check(where, MODEL_CLASSES[model_args.model][0], name, value)
                _check(where, functools.partial(dataclasses.replace, model_args), name, value)
        elif is_searchable_training_argument(training_args, name):
            if any(isinstance(v, (list, dict)) for v in values):
                raise MeliError(f"{where}: a training argument takes one value, not a list")
            for value in values:
                _check(where, functools.partial(checked_training_value, training_args), name, value)
        else:
            raise MeliError(
                f"{where}: not an argument a trial of --model {model_args.model} can set; architecture arguments: "
                f"{', '.join(sorted(architecture)) or 'none'}; or a numeric training argument (learning_rate, ...)"
            )


def checked_training_value(training_args: MeliTrainingArguments, **values) -> None:
    """Run the checks of `--name value` on a copy of the arguments (a `replace` would set up the devices again)."""
    trial_args = copy.copy(training_args)
    for name, value in values.items():
        current = getattr(training_args, name)
        setattr(trial_args, name, type(current)(value) if isinstance(current, enum.Enum) else value)
    trial_args.check_values()


def _check(where: str, build, name: str, value) -> None:
    """`build(name=value)` accepts the value, or the entry is refused with the reason."""
    try:
        build(**{name: value})
    except MeliError as err:
        raise MeliError(f"{where}: {err}") from None
    except (TypeError, ValueError, StrictDataclassError) as err:  # the configs are strict dataclasses
        raise MeliError(f"{where}: {value!r} is refused ({str(err).strip().splitlines()[0]})") from None


def suggest(trial, space: dict) -> dict:
    """The trial's value of every argument of the space. optuna returns a trial the same value each time a name is
    suggested, so `model_init` and `hp_space` draw the same trial. Choices that are lists (hidden layer sizes) are
    suggested as their JSON text: optuna's choices are scalars."""
    values = {}
    for name, entry in space.items():
        if "choices" in entry:
            choices = entry["choices"]
            encoded = any(isinstance(c, (list, dict)) for c in choices)
            chosen = trial.suggest_categorical(name, [json.dumps(c) for c in choices] if encoded else choices)
            values[name] = json.loads(chosen) if encoded else chosen
        elif is_float_range(entry):
            values[name] = trial.suggest_float(
                name, entry["low"], entry["high"], log=entry.get("log", False), step=entry.get("step")
            )
        else:
            values[name] = trial.suggest_int(
                name, entry["low"], entry["high"], log=entry.get("log", False), step=entry.get("step", 1)
            )
    return values


def decoded(params: dict, space: dict) -> dict:
    """A finished trial's arguments from optuna's stored parameters (list choices back from their JSON text)."""
    return {
        name: json.loads(value)
        if "choices" in space[name] and any(isinstance(c, (list, dict)) for c in space[name]["choices"])
        else value
        for name, value in params.items()
        if name in space
    }


class TrialObjective(TrainerCallback):
    """A trial's score, from each evaluation's metrics (`compute_objective`): the best so far when runs keep their
    best model, the last otherwise; reset when a trial's training begins."""

    def __init__(self, metric: str, greater_is_better: bool, keep_best: bool):
        self.metric = metric if metric.startswith("eval_") else f"eval_{metric}"
        self.better = max if greater_is_better else min
        self.keep_best = keep_best
        self.score: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.score = None

    def __call__(self, metrics: dict[str, float]) -> float:
        value = metrics[self.metric]
        self.score = value if self.score is None or not self.keep_best else self.better(self.score, value)
        return self.score


def build_pruner(name: str, evaluation_steps: int):
    """optuna's pruner for `--hp_pruner`: `evaluation_steps` apart, trials report their score; the median pruner
    may stop one from its first evaluation on, once 5 trials completed."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=evaluation_steps)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=evaluation_steps)
    return optuna.pruners.NopPruner()


def evaluation_interval(training_args: TrainingArguments, train_rows: int) -> int:
    """Optimizer steps between two evaluations, the unit in which trials report to the pruner."""
    if training_args.eval_strategy == "steps":
        eval_steps = training_args.eval_steps or training_args.logging_steps
        return math.ceil(eval_steps if eval_steps >= 1 else eval_steps * planned_steps(training_args, train_rows))
    one_epoch = copy.copy(training_args)
    one_epoch.num_train_epochs, one_epoch.max_steps = 1, -1
    return planned_steps(one_epoch, train_rows)


def check_search_settings(training_args: MeliTrainingArguments, data_args: DataTrainingArguments) -> None:
    """Settings of a single run that a search cannot honour are refused, not ignored."""
    if asks_resume(training_args.resume_from_checkpoint):
        raise MeliError("--resume_from_checkpoint: a search trains every trial from the start; drop the flag")
    if data_args.early_stopping_patience:
        raise MeliError("--early_stopping_patience: a search stops weak trials with --hp_pruner; drop the flag")
    if training_args.world_size > 1:
        raise MeliError(
            "--hp_search runs in one process: start several workers that share --hp_storage and --hp_study_name "
            "instead of torchrun/accelerate launch"
        )


def open_storage(url: str | None):
    """optuna's storage of the study: memory, or the database `--hp_storage` names (opened before any work)."""
    import optuna

    if url is None:
        return optuna.storages.InMemoryStorage()
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as err:  # sqlalchemy and the database drivers raise their own kinds
        raise MeliError(f"--hp_storage {url}: cannot be opened ({str(err).strip().splitlines()[0]})") from None


def trial_record(trial, space: dict) -> dict:
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "score": trial.value,
        "arguments": decoded(trial.params, space),
        "evaluations": {str(step): value for step, value in sorted(trial.intermediate_values.items())},
        "seconds": round(trial.duration.total_seconds(), 1) if trial.duration else None,
    }


def search_summary(study, space: dict, objective: TrialObjective, model: str, seconds: float) -> dict:
    """What `hp_search.json` holds: the space and objective, and every trial of the study (all workers')."""
    from optuna.trial import TrialState

    best = study.best_trial if any(trial.state == TrialState.COMPLETE for trial in study.trials) else None
    return {
        "model": model,
        "objective": objective.metric,
        "direction": study.direction.name.lower(),
        "scored": "best evaluation of a trial" if objective.keep_best else "last evaluation of a trial",
        "study_name": study.study_name,
        "space": space,
        "seconds": seconds,
        "best_trial": best.number if best else None,
        "best_score": best.value if best else None,
        "best_arguments": decoded(best.params, space) if best else None,
        "trials": [trial_record(trial, space) for trial in study.trials],
    }


def best_run_arguments(given: dict, best: dict, output_dir: str | Path) -> dict:
    """The best trial's run as an arguments file: the arguments the search was given, the trial's, and an output
    folder inside the search's; paths absolute, so that the file trains the same run from any folder."""
    arguments = given | best
    for name in ("data_dir", "word_vectors"):
        if arguments.get(name) not in (None, "none"):
            arguments[name] = str(Path(arguments[name]).resolve())
    if arguments.get("teacher"):  # local folders; a Hub id stays a name
        arguments["teacher"] = [str(Path(t).resolve()) if Path(t).exists() else t for t in arguments["teacher"]]
    arguments.pop("overwrite_output_dir", None)  # the best run is never written over an earlier one unasked
    arguments["output_dir"] = str((Path(output_dir) / BEST_RUN_FOLDER).resolve())
    return arguments


def run_hp_search(
    model_args: ModelArguments,
    data_args: DataTrainingArguments,
    training_args: MeliTrainingArguments,
    search_args: HyperparameterSearchArguments,
) -> dict:
    """Run the trials, write `hp_search.json` and `best_run.json`, and train the best run if asked; returns the
    search summary that `hp_search.json` holds."""
    import optuna

    check_search_settings(training_args, data_args)
    source = (
        f"--hp_space {search_args.hp_space}" if search_args.hp_space else f"the default space of {model_args.model}"
    )
    space = load_search_space(search_args.hp_space) if search_args.hp_space else MODELS[model_args.model].search_space
    check_search_space(space, source, model_args, training_args)
    # The arguments the search was given, which the best run's arguments file starts from.
    given = run_arguments(model_args, data_args, training_args)
    searched = sorted(set(given) & set(space))
    if searched:
        raise MeliError(
            f"--{searched[0]}: {source} searches it, so the flag would be ignored; drop the flag, or give an "
            "--hp_space without it"
        )
    storage = open_storage(search_args.hp_storage)
    reads = run_inputs(model_args, data_args, training_args) | {
        "--hp_space": [search_args.hp_space],
        "--hp_storage": [search_args.hp_storage.removeprefix(SQLITE_URL)]
        if (search_args.hp_storage or "").startswith(SQLITE_URL)
        else [],
    }
    replaces_earlier_run = check_output_dir(training_args.output_dir, training_args.overwrite_output_dir, None, reads)
    architecture = architecture_fields(model_args.model)
    # Trials keep no checkpoints (the best run is trained again from best_run.json) and push nothing. A float drawn
    # for an argument whose value is an int (warmup_steps 0) would be cast to int by the Trainer: make it a float.
    floats = {
        name: float(getattr(training_args, name))
        for name, entry in space.items()
        if name not in architecture and is_float_range(entry) and type(getattr(training_args, name)) is int
    }
    trial_args = settled_training_arguments(
        model_args, training_args, save_strategy="no", load_best_model_at_end=False, push_to_hub=False, **floats
    )
    run = prepare_run(model_args, data_args, trial_args, search=True)

    def model_init(trial=None):
        values = suggest(trial, space) if trial is not None else {}
        model = build_model(
            model_args.model,
            run.tokenizer,
            run.id2label,
            model_args.architecture() | {k: v for k, v in values.items() if k in architecture},
            run.vectors,
            model_name_or_path=model_args.model_name_or_path,
            trust_remote_code=model_args.trust_remote_code,
        )
        if isinstance(model, MeliTfidfForSequenceClassification):
            fit_idf(model, run.inputs["train"])
        # A run builds its model before the Trainer, whose start seeds again: seeded here too, a trial trains on the
        # dropout and batches of the run `scripts/train.py best_run.json` trains, and so scores what it scores.
        enable_full_determinism(trial_args.seed) if trial_args.full_determinism else set_seed(trial_args.seed)
        return model

    def hp_space(trial) -> dict:
        return {name: value for name, value in suggest(trial, space).items() if name not in architecture}

    objective = TrialObjective(
        training_args.metric_for_best_model or "balanced_accuracy",
        training_args.greater_is_better is not False,
        keep_best=training_args.load_best_model_at_end,
    )
    trainer = build_trainer(
        trial_args, run.inputs, run.tokenizer, model_args.model, run.label_counts, [objective], model_init=model_init
    )

    previous_run = set_aside_previous_run(training_args.output_dir) if replaces_earlier_run else None
    study_name = search_args.hp_study_name or Path(training_args.output_dir).resolve().name
    started = time.monotonic()
    try:
        trainer.hyperparameter_search(
            hp_space=hp_space,
            compute_objective=objective,
            n_trials=search_args.hp_trials,
            direction="maximize" if objective.better is max else "minimize",
            backend="optuna",
            timeout=search_args.hp_timeout,
            storage=storage,
            study_name=study_name,
            load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=training_args.seed),
            pruner=build_pruner(search_args.hp_pruner, evaluation_interval(trial_args, len(run.inputs["train"]))),
        )
    except ValueError:
        # The Trainer asks the study for its best trial, which fails when every trial was pruned: that is reported
        # below with the trials' record; any other error is the error.
        trials = optuna.load_study(study_name=study_name, storage=storage).trials
        if not trials or any(trial.state != optuna.trial.TrialState.PRUNED for trial in trials):
            raise
    study = optuna.load_study(study_name=study_name, storage=storage)
    summary = search_summary(study, space, objective, model_args.model, round(time.monotonic() - started, 1))
    output_dir = Path(training_args.output_dir)
    with atomic_output(output_dir / SEARCH_FILE) as stream:
        json.dump(summary, stream, indent=2)
    if summary["best_trial"] is None:
        raise MeliError(
            f"no trial of the search completed ({len(summary['trials'])} pruned; {output_dir / SEARCH_FILE} "
            "lists them): run more trials, or prune less (--hp_pruner none)"
        )
    with atomic_output(output_dir / BEST_RUN_FILE) as stream:
        json.dump(best_run_arguments(given, summary["best_arguments"], output_dir), stream, indent=2)
    remove_previous_run(previous_run)
    states = [trial["state"] for trial in summary["trials"]]
    logger.info(
        "search: %d trials (%d complete, %d pruned) in %.0f s; best trial %d: %s %.4f with %s",
        len(states),
        states.count("complete"),
        states.count("pruned"),
        summary["seconds"],
        summary["best_trial"],
        objective.metric,
        summary["best_score"],
        summary["best_arguments"],
    )
    if search_args.hp_retrain_best:
        model_args, data_args, training_args, _ = parse_training_file(output_dir / BEST_RUN_FILE)
        metrics = run_training(model_args, data_args, training_args)
        logger.info(
            "best run retrained into %s: %s %.4f",
            training_args.output_dir,
            objective.metric,
            metrics[objective.metric],
        )
    return summary
