"""`scripts/train.py --hp_search optuna`: trials through `Trainer.hyperparameter_search`, the files a search leaves,
and the retraining of its best run to the score the search reported."""

import json
from pathlib import Path

import pytest

from meli_hf.errors import MeliError
from meli_hf.training import search as hp_search
from meli_hf.training.parsing import parse_training_arguments, parse_training_file
from meli_hf.training.run import run_training
from meli_hf.training.search import TrialObjective, run_hp_search

pytest.importorskip("optuna")

# Small enough for a test: one or two epochs over the sample per trial.
QUICK_SPACE = {
    "learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
    "num_train_epochs": {"low": 1, "high": 2},
    "hidden_layers": {"choices": [[16], [32, 16]]},
    "dropout": {"low": 0.0, "high": 0.4},
    "class_balance": {"choices": [0.0, 1.0]},
}


def write_space(folder: Path, space: dict, name: str = "space.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(space))
    return path


def search(sample_dir: Path, output_dir: Path, *flags: str) -> dict:
    return run_hp_search(
        *parse_training_arguments(
            [
                "--model",
                "mlp",
                "--data_dir",
                str(sample_dir),
                "--output_dir",
                str(output_dir),
                "--embedding_dim",
                "32",
                "--disable_tqdm",
                "true",
                "--hp_search",
                "optuna",
                *flags,
            ]
        )
    )


def test_two_trial_search_writes_every_trial_and_its_best_run_retrains_to_the_same_score(sample_dir, tmp_path):
    summary = search(sample_dir, tmp_path / "search", "--hp_trials", "2", "--hp_retrain_best", "true")

    written = json.loads((tmp_path / "search" / "hp_search.json").read_text())
    assert written == summary and len(written["trials"]) == 2
    for trial in written["trials"]:
        assert trial["state"] == "complete" and 0 < trial["score"] <= 1
        assert set(trial["arguments"]) == {
            "learning_rate",
            "num_train_epochs",
            "hidden_layers",
            "dropout",
            "class_balance",
            "label_smoothing_factor",
        }
        assert isinstance(trial["arguments"]["hidden_layers"], list)  # decoded from optuna's JSON text choice
        # Scored as a run keeps its best model: the best of the trial's evaluations, one per epoch.
        assert len(trial["evaluations"]) == trial["arguments"]["num_train_epochs"]
        assert trial["score"] == max(trial["evaluations"].values())
    best = max(written["trials"], key=lambda trial: trial["score"])
    assert written["best_trial"] == best["number"] and written["best_arguments"] == best["arguments"]

    best_run = json.loads((tmp_path / "search" / "best_run.json").read_text())
    assert best_run["output_dir"] == str((tmp_path / "search" / "best").resolve())
    assert best_run["data_dir"] == str(sample_dir.resolve()) and best_run["embedding_dim"] == 32
    assert {k: best_run[k] for k in best["arguments"]} == best["arguments"]
    assert not {"hp_search", "hp_trials", "hp_retrain_best"} & set(best_run)

    # --hp_retrain_best trained best_run.json into <output_dir>/best, to the score the search reported.
    retrained = json.loads((tmp_path / "search" / "best" / "all_results.json").read_text())
    assert retrained["eval_balanced_accuracy"] == pytest.approx(best["score"], abs=1e-9)
    config = json.loads((tmp_path / "search" / "best" / "config.json").read_text())
    assert config["hidden_layers"] == best["arguments"]["hidden_layers"]
    assert config["dropout"] == pytest.approx(best["arguments"]["dropout"])

    # The file trains the same run again, as `scripts/train.py best_run.json` does, from any folder.
    model_args, data_args, training_args, search_args = parse_training_file(tmp_path / "search" / "best_run.json")
    assert search_args.hp_search is None
    training_args.output_dir = str(tmp_path / "again")
    again = run_training(model_args, data_args, training_args)
    assert again["eval_balanced_accuracy"] == pytest.approx(best["score"], abs=1e-9)


def test_each_trial_trains_with_its_own_arguments(sample_dir, tmp_path, monkeypatch):
    models, runs = [], []
    build_model = hp_search.build_model
    monkeypatch.setattr(
        hp_search,
        "build_model",
        lambda model, tokenizer, id2label, architecture, *a, **k: (
            models.append(architecture) or build_model(model, tokenizer, id2label, architecture, *a, **k)
        ),
    )
    monkeypatch.setattr(
        TrialObjective,
        "on_train_begin",
        lambda self, args, *a, **k: runs.append((args.learning_rate, args.num_train_epochs, args.class_balance)),
    )
    summary = search(
        sample_dir, tmp_path / "run", "--hp_trials", "3", "--hp_space", str(write_space(tmp_path, QUICK_SPACE))
    )

    # One model at the Trainer's start, then one per trial (the first model, for the data checks, comes from run.py).
    trial_models = models[1:]
    assert len(trial_models) == len(runs) == 3
    for trial, architecture, run in zip(summary["trials"], trial_models, runs):
        arguments = trial["arguments"]
        assert (architecture["hidden_layers"], architecture["dropout"]) == (
            arguments["hidden_layers"],
            arguments["dropout"],
        )
        assert run == (arguments["learning_rate"], arguments["num_train_epochs"], arguments["class_balance"])
    assert len({run[0] for run in runs}) == 3


def test_timeout_stops_starting_trials(sample_dir, tmp_path):
    space = write_space(tmp_path, QUICK_SPACE)
    summary = search(
        sample_dir, tmp_path / "run", "--hp_trials", "5", "--hp_timeout", "0.01", "--hp_space", str(space)
    )
    assert len(summary["trials"]) == 1


def test_workers_sharing_a_storage_share_the_study(sample_dir, tmp_path):
    space = write_space(tmp_path, QUICK_SPACE)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    shared = ["--hp_trials", "1", "--hp_space", str(space), "--hp_storage", storage, "--hp_study_name", "mlp-search"]
    search(sample_dir, tmp_path / "worker1", *shared)
    second = search(sample_dir, tmp_path / "worker2", *shared)
    assert [trial["number"] for trial in second["trials"]] == [0, 1]
    assert second["study_name"] == "mlp-search"


def test_a_folder_holding_a_search_is_not_overwritten_unasked(sample_dir, tmp_path):
    space = write_space(tmp_path, QUICK_SPACE)
    search(sample_dir, tmp_path / "run", "--hp_trials", "1", "--hp_space", str(space))
    before = (tmp_path / "run" / "hp_search.json").read_text()
    with pytest.raises(MeliError, match="holds an earlier run"):
        search(sample_dir, tmp_path / "run", "--hp_trials", "1", "--hp_space", str(space))
    assert (tmp_path / "run" / "hp_search.json").read_text() == before


def test_trial_objective_keeps_the_best_evaluation_of_each_trial():
    objective = TrialObjective("balanced_accuracy", greater_is_better=True, keep_best=True)
    assert [objective({"eval_balanced_accuracy": v}) for v in (0.5, 0.7, 0.6)] == [0.5, 0.7, 0.7]
    objective.on_train_begin(None, None, None)  # a new trial
    assert objective({"eval_balanced_accuracy": 0.4}) == 0.4
    last = TrialObjective("eval_loss", greater_is_better=False, keep_best=False)
    assert [last({"eval_loss": v}) for v in (2.0, 1.0, 1.5)] == [2.0, 1.0, 1.5]


@pytest.mark.parametrize(
    "space, message",
    [
        (
            {"num_filters": {"choices": [64]}},
            "space.json: num_filters: not an argument a trial of --model mlp can set",
        ),
        ({"output_dir": {"choices": ["x"]}}, "space.json: output_dir: not an argument"),
        ({"dropout": {"low": 0.1, "high": 1.5}}, "space.json: dropout: --dropout 1.5: must be a probability"),
        ({"learning_rate": {"low": 0, "high": 0.1, "log": True}}, "learning_rate: a log-scale range starts above 0"),
        ({"learning_rate": {"low": 0.1, "high": 0.01}}, "learning_rate: low (0.1) and high (0.01) must be numbers"),
        ({"hidden_layers": {"choices": []}}, "hidden_layers: choices must be a non-empty list"),
        ({"hidden_layers": {"choices": [[0]]}}, "hidden_layers: --hidden_layers 0: sizes must be at least 1"),
        ({"hidden_layers": {"choices": ["wide"]}}, "space.json: hidden_layers: 'wide' is refused"),
        ({"lr_scheduler_type": {"choices": ["linear", "sideways"]}}, "lr_scheduler_type: 'sideways' is refused"),
        ({"class_balance": {"low": -1.0, "high": 1.0}}, "class_balance: --class_balance -1.0: must be 0"),
        ({"dropout": {"min": 0.1, "max": 0.2}}, "dropout: a range has low and high"),
        ({"dropout": 0.3}, "dropout: expected {low: ..., high: ...} or {choices: [...]}"),
    ],
)
def test_a_bad_search_space_is_refused_before_any_work(space, message, sample_dir, tmp_path):
    with pytest.raises(MeliError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        search(sample_dir, tmp_path / "run", "--hp_space", str(write_space(tmp_path, space)))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num_train_epochs", "3"], "--num_train_epochs: the default space of mlp searches it"),
        (["--early_stopping_patience", "2"], "--early_stopping_patience: a search stops weak trials"),
        (["--resume_from_checkpoint", "true"], "--resume_from_checkpoint: a search trains every trial"),
        (["--hp_storage", "nosuchdb://x"], "--hp_storage nosuchdb://x: cannot be opened"),
        (["--hp_trials", "0"], "--hp_trials 0: must be at least 1"),
        (["--hp_space", "missing.yaml"], "--hp_space missing.yaml: file not found"),
        (["--hp_study_name", " "], "--hp_study_name: give a name"),
        (["--hp_timeout", "nan"], "--hp_timeout nan: must be above 0 seconds"),
    ],
)
def test_search_settings_that_cannot_be_honoured_are_refused(flags, message, sample_dir, tmp_path):
    with pytest.raises(MeliError, match=message):
        search(sample_dir, tmp_path / "run", *flags)


def test_search_flags_need_a_search_and_the_search_needs_optuna(monkeypatch):
    with pytest.raises(MeliError, match="--hp_trials applies to a search: add --hp_search optuna"):
        parse_training_arguments(["--hp_trials", "5"])
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(
        MeliError, match=r"--hp_search optuna: its package is not installed \(pip install -e '.\[hpo\]'\)"
    ):
        parse_training_arguments(["--hp_search", "optuna"])


def test_an_hp_space_file_in_yaml_replaces_the_default_space(sample_dir, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 1.0e-3, high: 5.0e-3, log: true}\nnum_train_epochs: {choices: [1]}\n")
    summary = search(sample_dir, tmp_path / "run", "--hp_trials", "1", "--hp_space", str(space))
    assert set(summary["trials"][0]["arguments"]) == {"learning_rate", "num_train_epochs"}
    assert summary["space"]["num_train_epochs"] == {"choices": [1]}


@pytest.mark.parametrize("model", ["mlp", "cnn", "lstm", "tfidf", "beto"])
def test_every_default_space_holds_only_values_its_model_accepts(model, tiny_bert_dir):
    from meli_hf.training.registry import MODELS
    from meli_hf.training.search import check_search_space

    model_args, _, training_args, _ = parse_training_arguments(
        ["--model", model, "--model_name_or_path", str(tiny_bert_dir)]
    )
    check_search_space(MODELS[model].search_space, f"the default space of {model}", model_args, training_args)


def test_tfidf_and_beto_trials_fit_their_models_and_take_float_arguments(
    sample_dir, tiny_bert_dir, tmp_path, monkeypatch
):
    warmups = []
    monkeypatch.setattr(
        TrialObjective, "on_train_begin", lambda self, args, *a, **k: warmups.append(args.warmup_steps)
    )
    space = {"num_train_epochs": {"choices": [1]}, "warmup_steps": {"low": 0.05, "high": 0.2}}
    beto = ["--model_name_or_path", str(tiny_bert_dir), "--hp_space", str(write_space(tmp_path, space, "beto.json"))]
    summary = run_hp_search(
        *parse_training_arguments(
            ["--model", "beto", "--data_dir", str(sample_dir), "--output_dir", str(tmp_path / "beto")]
            + ["--disable_tqdm", "true", "--hp_search", "optuna", "--hp_trials", "2", *beto]
        )
    )
    # warmup_steps is 0 (an int) by default: the Trainer casts a drawn ratio to the old value's type.
    assert warmups == [trial["arguments"]["warmup_steps"] for trial in summary["trials"]]
    assert all(0.05 <= warmup <= 0.2 for warmup in warmups)

    tfidf_space = write_space(tmp_path, {"learning_rate": {"low": 0.05, "high": 0.2}}, "tfidf.json")
    summary = run_hp_search(
        *parse_training_arguments(
            ["--model", "tfidf", "--data_dir", str(sample_dir), "--output_dir", str(tmp_path / "tfidf")]
            + ["--num_train_epochs", "1", "--disable_tqdm", "true", "--hp_search", "optuna", "--hp_trials", "1"]
            + ["--hp_space", str(tfidf_space)]
        )
    )
    assert summary["best_score"] > 0.5  # document frequencies fitted for the trial's model: far above chance


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_run_arguments_are_the_flags_given_beyond_the_models_defaults(model, tmp_path):
    from meli_hf.training.parsing import run_arguments

    flags = ["--model", model, "--learning_rate", "5e-4", "--output_dir", str(tmp_path), "--hub_token", "secret"]
    arguments = run_arguments(*parse_training_arguments(flags)[:3])
    assert arguments == {"model": model, "learning_rate": 5e-4, "output_dir": str(tmp_path)}
    path = tmp_path.with_name(tmp_path.name + "-run.json")
    path.write_text(json.dumps(arguments))
    assert parse_training_file(path)[2].learning_rate == 5e-4


def test_a_search_whose_trials_are_all_pruned_says_so_and_keeps_their_record(sample_dir, tmp_path, monkeypatch):
    import optuna

    class PruneEverything(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    monkeypatch.setattr(hp_search, "build_pruner", lambda name, steps: PruneEverything())
    space = write_space(tmp_path, QUICK_SPACE)
    with pytest.raises(MeliError, match=r"no trial of the search completed \(2 pruned;"):
        search(sample_dir, tmp_path / "run", "--hp_trials", "2", "--hp_space", str(space))
    written = json.loads((tmp_path / "run" / "hp_search.json").read_text())
    assert [trial["state"] for trial in written["trials"]] == ["pruned", "pruned"]
    assert written["best_trial"] is None and not (tmp_path / "run" / "best_run.json").exists()
