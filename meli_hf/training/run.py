"""The run: `run_training` reads as the story of `run_classification.py`'s main: data -> labels -> tokenizer and
model -> preprocessing -> Trainer -> train -> evaluate -> save -> push, with the checks that keep earlier runs and
checkpoints safe before any work.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import datasets.config
import pyarrow.compute as pc
import torch
from datasets import DatasetDict
from transformers import AutoConfig, EarlyStoppingCallback, PreTrainedTokenizerBase, TrainingArguments, set_seed

from ..data.collator import TEACHER_COLUMNS, WordIdBatches, WordIdCollator
from ..data.loading import load_meli
from ..data.sample import sample_dir
from ..data.tokenization import MODEL_MAX_LENGTH, keeps_numbers
from ..data.word_vectors import cached_title_vectors
from ..errors import MeliError
from ..evaluation.metrics import SPLIT_METRIC_PREFIXES, ClassificationMetrics, logits_to_label_ids
from ..files import is_checkpoint_folder
from ..hub import hub_errors, load_checkpoint, load_pretrained, push_checkpoint
from ..inference.ensemble_file import paths_read
from ..models.modeling_meli import MeliTfidfForSequenceClassification
from .arguments import DataTrainingArguments, MeliTrainingArguments, ModelArguments, require
from .builders import (
    build_collator,
    build_model,
    build_word_tokenizer,
    load_model_word_vectors,
    load_pretrained_tokenizer,
    new_config,
)
from .checkpoints import (
    check_checkpoint,
    check_output_dir,
    remove_previous_run,
    resolve_resume_checkpoint,
    set_aside_previous_run,
)
from .distillation import add_teacher_targets
from .model_card import RunCardData, card_model_arguments, plot_learning_curves
from .registry import MODELS
from .tracking import mlflow_run
from .trainer import ClassBalancedLoss, MeliTrainer

logger = logging.getLogger(__name__)


def check_resume_checkpoint(checkpoint: Path, model: str, trust_remote_code: bool) -> None:
    """Fail before any work when `--resume_from_checkpoint` holds another architecture than `--model`."""
    if not is_checkpoint_folder(checkpoint):
        raise MeliError(f"--resume_from_checkpoint {checkpoint}: no config.json, not a checkpoint folder")
    found = load_pretrained(
        AutoConfig.from_pretrained, str(checkpoint), "--resume_from_checkpoint", trust_remote_code=trust_remote_code
    ).model_type
    expected = MODELS[model].model_type  # None: beto, any transformer
    meli_types = {spec.model_type for spec in MODELS.values()} - {None}
    if (expected is not None and found != expected) or (expected is None and found in meli_types):
        raise MeliError(f"--resume_from_checkpoint {checkpoint} holds a {found!r} model, not --model {model}.")


def check_evaluation_data(
    dataset: DatasetDict, data_dir: Path, training_args: TrainingArguments, search: bool
) -> None:
    """Evaluation during training (and keeping the best model) needs a validation split, and a search's trials are
    scored on it."""
    if "validation" in dataset:
        return
    if search:
        raise MeliError(f"--data_dir {data_dir} has no validation split, on which trials are scored")
    if training_args.eval_strategy == "no" and not training_args.load_best_model_at_end:
        return
    raise MeliError(
        f"--data_dir {data_dir} has no validation split (validation.csv[.gz] or <language>.validation.jsonl[.gz]), "
        "which evaluation during training needs; add one, or train without: --eval_strategy no "
        "--load_best_model_at_end false"
    )


def check_same_labels(config, label_names: list[str], checkpoint: Path) -> None:
    """A resumed model scores the same categories in the same order as the data it resumes on."""
    saved = [config.id2label[i] for i in range(config.num_labels)]
    if saved != label_names:
        missing, extra = sorted(set(label_names) - set(saved)), sorted(set(saved) - set(label_names))
        raise MeliError(
            f"--resume_from_checkpoint {checkpoint} was trained on other categories than this data "
            f"({len(missing)} new, e.g. {missing[:3]}; {len(extra)} gone, e.g. {extra[:3]}): resume with the data "
            "flags of the original run"
        )


def planned_steps(training_args: TrainingArguments, train_rows: int) -> int:
    """Optimizer steps of the whole run, as the Trainer counts them (each process reads its share of the rows)."""
    if training_args.max_steps > 0:
        return training_args.max_steps
    rows_per_process = math.ceil(train_rows / training_args.world_size)
    rounding = math.floor if training_args.dataloader_drop_last else math.ceil
    batches = rounding(rows_per_process / training_args.per_device_train_batch_size)
    per_epoch = max(math.ceil(batches / training_args.gradient_accumulation_steps), 1)
    return math.ceil(training_args.num_train_epochs * per_epoch)


def load_data(data_args: DataTrainingArguments, seed: int) -> tuple[DatasetDict, Path]:
    """The splits of `--data_dir` (or of the bundled sample) and the folder they came from."""
    data_dir = Path(data_args.data_dir) if data_args.data_dir else sample_dir()
    max_rows = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_test_samples,
    }
    dataset = load_meli(
        data_dir,
        language=data_args.language,
        label_quality=data_args.label_quality,
        max_rows={split: n for split, n in max_rows.items() if n is not None},
        seed=seed,
        drop_unknown_categories=data_args.drop_unknown_categories,
    )
    return dataset, data_dir


def tokenize(
    dataset: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_seq_length: int, training_args: TrainingArguments
) -> DatasetDict:
    """Titles -> `input_ids`, cached by `datasets`; course word ids are kept when the tokenizer is the word one."""
    with training_args.main_process_first(desc="tokenizing titles"):
        return dataset.map(
            lambda batch: tokenizer(batch["title"], truncation=True, max_length=max_seq_length),
            batched=True,
            remove_columns=[c for c in dataset["train"].column_names if c not in ("label", *TEACHER_COLUMNS)],
            desc="Tokenizing titles",
        )


def truncate_word_ids(dataset: DatasetDict, max_seq_length: int, training_args: TrainingArguments) -> DatasetDict:
    """Course word ids cut to `max_seq_length`, as titles are tokenized: one long row would otherwise pad a whole
    batch to its length (and serving, which truncates, would see other inputs than training)."""
    longest = max(pc.max(pc.list_value_length(d.data.table["input_ids"])).as_py() or 0 for d in dataset.values())
    if longest <= max_seq_length:
        return dataset
    with training_args.main_process_first(desc="truncating word ids"):
        return (
            dataset.with_format("arrow")
            .map(
                lambda table: table.set_column(
                    table.schema.get_field_index("input_ids"),
                    "input_ids",
                    pc.list_slice(table["input_ids"], 0, max_seq_length),
                ),
                batched=True,
                desc=f"Truncating word ids to {max_seq_length}",
            )
            .with_format(None)
        )


def prepare_datasets(
    dataset: DatasetDict,
    tokenizer,
    model: str,
    max_seq_length: int,
    training_args: TrainingArguments,
    trust_remote_code: bool = False,
) -> dict:
    """Model inputs per split: word ids served as Arrow batches for the baselines, tokenized titles for BETO; with
    `--teacher`, the training split also carries the teachers' top-k targets (and, with `--distill_augment`,
    perturbed copies of its titles; `trust_remote_code` lets teachers run the code they ship). The Trainer must keep
    their columns: `settled_training_arguments`."""
    if training_args.teacher:
        with training_args.main_process_first(desc="teacher targets"):
            dataset["train"] = add_teacher_targets(
                dataset["train"],
                training_args.teacher,
                training_args.distill_top_k,
                copies=training_args.distill_augment,
                seed=training_args.seed,
                batch_size=training_args.per_device_eval_batch_size,
                device=str(training_args.device),
                trust_remote_code=trust_remote_code,
            )
    if MODELS[model].tokenizer != "word" or "input_ids" not in dataset["train"].column_names:
        dataset = tokenize(dataset, tokenizer, max_seq_length, training_args)
    else:
        dataset = truncate_word_ids(dataset, max_seq_length, training_args)
    if MODELS[model].tokenizer != "word":
        return dict(dataset)
    return {split: WordIdBatches(data) for split, data in dataset.items()}


def set_max_seq_length(tokenizer: PreTrainedTokenizerBase, model, max_seq_length: int) -> None:
    """Tokens kept per title, saved with the tokenizer so that prediction truncates titles as training did; no more
    than the model has positions for."""
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None:
        require(max_seq_length <= positions, "max_seq_length", max_seq_length, f"the model has {positions} positions")
    tokenizer.model_max_length = max_seq_length


def check_distilled_parts(training_args: TrainingArguments, config) -> None:
    """`--distill_linear_part false` says what the linear part learns from: a student without one (or a resumed
    one whose parts share a loss) would train as if it were not given."""
    if training_args.distill_linear_part:
        return
    if not getattr(config, "trains_parts_apart", False):
        raise MeliError(
            "--distill_linear_part false applies to a student whose linear part is trained on its own loss "
            "(--linear_bigram_buckets N, the default of mlp, cnn and lstm)"
        )


def count_labels(train, num_labels: int) -> torch.Tensor:
    """Training rows per label, which weigh the class-balanced loss."""
    return torch.bincount(torch.as_tensor(train.with_format("numpy")["label"][:]), minlength=num_labels)


def build_trainer(
    training_args: TrainingArguments,
    inputs: dict,
    tokenizer: PreTrainedTokenizerBase,
    model_name: str,
    label_counts: torch.Tensor,
    callbacks: list,
    model=None,
    model_init=None,
    card_data: RunCardData | None = None,
) -> MeliTrainer:
    """The Trainer of a run (`model`, `card_data`) and of a search's trials (`model_init`): the same inputs,
    collator, metrics and class-balanced loss, which reads its settings from `training_args`."""
    return MeliTrainer(
        model=model,
        model_init=model_init,
        args=training_args,
        train_dataset=inputs["train"],
        eval_dataset=inputs.get("validation"),
        processing_class=tokenizer,
        data_collator=build_collator(model_name, tokenizer),
        compute_metrics=ClassificationMetrics(),
        compute_loss_func=ClassBalancedLoss(label_counts, training_args),
        preprocess_logits_for_metrics=logits_to_label_ids,
        callbacks=callbacks,
        card_data=card_data,
    )


def fit_idf(model: MeliTfidfForSequenceClassification, train: WordIdBatches, batch_size: int = 8192) -> None:
    """The TF-IDF model's document frequencies, counted over the training titles in large Arrow batches."""
    collator = WordIdCollator(pad_token_id=model.config.pad_token_id)
    model.fit_idf(collator(train.table.slice(start, batch_size)) for start in range(0, len(train), batch_size))
    if model.config.num_features == 0:
        raise MeliError(
            f"--min_document_frequency {model.config.min_document_frequency}: no feature is held by that many of "
            f"the {len(train)} training titles"
        )
    if model.config.num_features is not None:
        logger.info(
            "tfidf: %d of %d features are held by at least %d training titles: %d parameters",
            model.config.num_features,
            len(model.feature_rows),
            model.config.min_document_frequency,
            model.num_parameters(),
        )


def run_inputs(
    model_args: ModelArguments,
    data_args: DataTrainingArguments,
    training_args: MeliTrainingArguments,
    checkpoint: Path | None = None,
) -> dict[str, list]:
    """What a run reads, by flag (`checkpoint`: the one `--resume_from_checkpoint` resolves to): its run folder may
    not be, or hold, any of it."""
    pretrained = MODELS[model_args.model].tokenizer == "pretrained"
    return {
        "--data_dir": [data_args.data_dir],
        "--word_vectors": [model_args.word_vectors_file],
        "--model_name_or_path": [model_args.model_name_or_path if pretrained else None],
        "--teacher": paths_read(training_args.teacher or []),
        "--resume_from_checkpoint": [checkpoint],
    }


def title_vectors(dataset: DatasetDict, data_args: DataTrainingArguments, data_dir: Path, dim: int) -> Path:
    """Vectors learnt from the training titles (the words the run's tokenizer keeps), cached with the data."""
    course_files = "input_ids" in dataset["train"].column_names
    keep_numbers = keeps_numbers(data_args.keep_numbers, data_dir, course_files)
    cache = Path(datasets.config.HF_DATASETS_CACHE) / "meli_hf_title_vectors"
    return cached_title_vectors(dataset["train"], keep_numbers, dim, cache)


def new_tokenizer(model_args: ModelArguments, data_args: DataTrainingArguments, dataset: DatasetDict, data_dir: Path):
    """A new run's tokenizer: a word tokenizer of the data's vocabulary for the baselines, the checkpoint's own for a
    pretrained transformer."""
    if MODELS[model_args.model].tokenizer == "pretrained":
        return load_pretrained_tokenizer(model_args.model_name_or_path, model_args.trust_remote_code)
    return build_word_tokenizer(
        dataset,
        data_dir,
        language=data_args.language,
        keep_numbers=data_args.keep_numbers,
        max_vocabulary_words=data_args.max_vocabulary_words,
        min_word_frequency=data_args.min_word_frequency,
    )


def settled_training_arguments(
    model_args: ModelArguments, training_args: MeliTrainingArguments, **changes
) -> MeliTrainingArguments:
    """The arguments the Trainer is built with, settled once before any work and never changed afterwards. It keeps
    every column of word-id batches (Arrow batches of the model's inputs, which its column filter would split) and
    of distillation (teacher targets, which are no argument of a model's forward). With `--hub_strategy end` it
    pushes nothing itself: the run pushes the final folder once, after the local save and the model card. `changes`:
    a search's settings of its trials."""
    keeps_columns = MODELS[model_args.model].tokenizer == "word" or bool(training_args.teacher)
    settled = {
        "remove_unused_columns": training_args.remove_unused_columns and not keeps_columns,
        "push_to_hub": training_args.push_to_hub and training_args.hub_strategy != "end",
    }
    return dataclasses.replace(training_args, **(settled | changes))


@dataclass
class PreparedRun:
    """What a run and a search's trials start from: the data's labels, the tokenizer, the first model, the word
    vectors (a search builds every trial's model from them) and the model inputs of each split."""

    data_dir: Path
    label_names: list[str]
    tokenizer: PreTrainedTokenizerBase
    model: torch.nn.Module
    vectors: object
    max_seq_length: int
    inputs: dict
    label_counts: torch.Tensor

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))


def prepare_run(
    model_args: ModelArguments,
    data_args: DataTrainingArguments,
    training_args: MeliTrainingArguments,
    checkpoint: Path | None = None,
    steps_done: int = 0,
    search: bool = False,
) -> PreparedRun:
    """Data -> labels -> tokenizer and model (new, or the `checkpoint`'s own, saved at step `steps_done`) -> model
    inputs, with the checks that need the data before any training."""
    set_seed(training_args.seed)
    dataset, data_dir = load_data(data_args, training_args.seed)
    check_evaluation_data(dataset, data_dir, training_args, search)
    if checkpoint is not None:
        if steps_done >= planned_steps(training_args, len(dataset["train"])):
            raise MeliError(
                f"--resume_from_checkpoint {checkpoint} is at step {steps_done}, the end of this run: nothing is "
                "left to train (raise --num_train_epochs or --max_steps to train on)"
            )
    label_names = dataset["train"].features["label"].names
    if len(label_names) < 2:
        raise MeliError(
            f"--data_dir {data_dir}: the train split holds one category only ({', '.join(label_names)}): a classifier "
            "needs at least two to tell apart"
        )
    logger.info(
        "data %s: %s rows, %d labels", data_dir, {split: len(d) for split, d in dataset.items()}, len(label_names)
    )

    vectors = None
    if checkpoint is not None:
        # The checkpoint's own tokenizer and architecture: data or model flags changed since must not alter them.
        tokenizer, model = load_checkpoint(
            str(checkpoint),
            "--resume_from_checkpoint",
            trust_remote_code=model_args.trust_remote_code,
            dtype=torch.float32,
        )
        check_same_labels(model.config, label_names, checkpoint)
        max_seq_length = data_args.max_seq_length or tokenizer.model_max_length
    else:
        tokenizer = new_tokenizer(model_args, data_args, dataset, data_dir)
        vectors_file = model_args.word_vectors_file
        if model_args.learns_title_vectors:
            new_config(model_args.model, tokenizer, dict(enumerate(label_names)), model_args.architecture())
            with training_args.main_process_first(desc="learning title vectors"):
                vectors_file = title_vectors(dataset, data_args, data_dir, model_args.embedding_dim)
        vectors = load_model_word_vectors(vectors_file, tokenizer, training_args.seed)
        model = build_model(
            model_args.model,
            tokenizer,
            dict(enumerate(label_names)),
            model_args.architecture(),
            vectors,
            model_name_or_path=model_args.model_name_or_path,
            trust_remote_code=model_args.trust_remote_code,
        )
        max_seq_length = data_args.max_seq_length or MODEL_MAX_LENGTH
    set_max_seq_length(tokenizer, model, max_seq_length)
    check_distilled_parts(training_args, model.config)
    logger.info(
        "model %s: %d parameters, vocabulary %d, device %s, %d processes",
        model_args.model,
        model.num_parameters(),
        len(tokenizer),
        training_args.device,
        training_args.world_size,
    )
    label_counts = count_labels(dataset["train"], len(label_names))
    inputs = prepare_datasets(
        dataset, tokenizer, model_args.model, max_seq_length, training_args, model_args.trust_remote_code
    )
    if isinstance(model, MeliTfidfForSequenceClassification) and checkpoint is None:
        fit_idf(model, inputs["train"])
    return PreparedRun(data_dir, label_names, tokenizer, model, vectors, max_seq_length, inputs, label_counts)


def run_training(
    model_args: ModelArguments, data_args: DataTrainingArguments, training_args: MeliTrainingArguments
) -> dict[str, float]:
    """Train, evaluate on validation and test, save the checkpoint with card and curves, push if asked."""
    checkpoint = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    steps_done = 0
    if checkpoint is not None:
        check_resume_checkpoint(checkpoint, model_args.model, model_args.trust_remote_code)
        steps_done = check_checkpoint(checkpoint)["global_step"]
    replaces_earlier_run = check_output_dir(
        training_args.output_dir,
        training_args.overwrite_output_dir,
        resume_checkpoint=checkpoint,
        reads=run_inputs(model_args, data_args, training_args, checkpoint),
    )
    push_at_end = training_args.push_to_hub
    training_args = settled_training_arguments(model_args, training_args)
    run = prepare_run(model_args, data_args, training_args, checkpoint, steps_done)

    pretrained = MODELS[model_args.model].tokenizer == "pretrained"
    card_data = RunCardData(
        model=model_args.model,
        data_name=run.data_dir.name,
        labels=len(run.label_names),
        rows={split: len(data) for split, data in run.inputs.items()},
        architecture=type(run.model).__name__,
        model_arguments=card_model_arguments(model_args, run.model.config, pretrained, run.max_seq_length),
        base_model=model_args.model_name_or_path
        if pretrained and not Path(model_args.model_name_or_path).exists()
        else None,
    )
    callbacks = [EarlyStoppingCallback(data_args.early_stopping_patience)] if data_args.early_stopping_patience else []
    with hub_errors(training_args, "creating the repository"):
        trainer = build_trainer(
            training_args,
            run.inputs,
            run.tokenizer,
            model_args.model,
            run.label_counts,
            callbacks,
            model=run.model,
            card_data=card_data,
        )

    previous_run = None
    if replaces_earlier_run:
        trainer.accelerator.wait_for_everyone()  # every process has checked the folder before it is moved
        with training_args.main_process_first(desc="setting the earlier run aside"):
            if training_args.should_save:
                previous_run = set_aside_previous_run(training_args.output_dir)
    with mlflow_run(training_args):
        train_result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
        metrics = {f"train_{k}" if not k.startswith("train_") else k: v for k, v in train_result.metrics.items()}
        metrics["train_samples"] = len(run.inputs["train"])
        for split, prefix in SPLIT_METRIC_PREFIXES.items():
            if split in run.inputs:
                metrics |= trainer.evaluate(run.inputs[split], metric_key_prefix=prefix)
                metrics[f"{prefix}_samples"] = len(run.inputs[split])
    trainer.save_model()
    trainer.log_metrics("all", metrics)
    trainer.save_metrics("all", metrics, combined=False)
    trainer.save_state()

    if trainer.is_world_process_zero():
        plot_learning_curves(trainer.state.log_history, Path(training_args.output_dir) / "learning_curves.png")
        trainer.create_model_card()
        remove_previous_run(previous_run)
        if push_at_end:
            push_checkpoint(trainer)
    return metrics
