"""The checkpoint's README (model card, from `templates/model_card.md`) and its learning-curve figure."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from matplotlib.figure import Figure
from transformers import TrainerCallback

from ..evaluation.metrics import SPLIT_METRIC_PREFIXES
from ..markdown import markdown_code, markdown_text

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"
CARD_HYPERPARAMETERS = (
    "learning_rate",
    "per_device_train_batch_size",
    "num_train_epochs",
    "optim",
    "weight_decay",
    "lr_scheduler_type",
    "warmup_steps",
    "seed",
    "bf16",
    "fp16",
    "world_size",
)
DISTILLATION_HYPERPARAMETERS = ("distill_alpha", "distill_temperature", "distill_top_k", "distill_augment")


@dataclasses.dataclass
class RunCardData:
    """What a run's model card says beyond its training arguments: the model, the data, and the metrics of its
    evaluations, which `RunCardCallback` gathers as the Trainer reports them."""

    model: str
    data_name: str
    labels: int
    rows: dict[str, int]
    architecture: str
    model_arguments: dict
    base_model: str | None = None  # a Hub id only: a local folder is no base model others can follow
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)


class RunCardCallback(TrainerCallback):
    """Keeps the latest value of each metric the Trainer evaluates (validation during training, then the final
    validation and test evaluations of the kept model) in the run's `RunCardData`."""

    def __init__(self, card_data: RunCardData):
        self.card_data = card_data

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.card_data.metrics |= metrics or {}


def _distillation_note(teachers: list[str], training_args) -> str:
    """The card's line on a distilled checkpoint: its teachers, and what they were asked about."""
    if not teachers:
        return ""
    asked = (
        f"the top {training_args.distill_top_k} categories of each training title under "
        f"{'their averaged' if len(teachers) > 1 else 'its'} probabilities"
    )
    if (copies := training_args.distill_augment) > 0:
        asked += f", and of {copies} perturbed {'copies' if copies > 1 else 'copy'} of each title"
    taught = "" if training_args.distill_linear_part else "; its linear part learned from the labels alone"
    return f"\n- Distilled from {', '.join(markdown_code(t) for t in teachers)} ({asked}){taught}"


def plot_learning_curves(log_history: list[dict], path: str | Path) -> None:
    """Train and validation loss, and validation balanced accuracy, per epoch."""
    train = [(e["epoch"], e["loss"]) for e in log_history if "loss" in e and "epoch" in e]
    evals = [e for e in log_history if "eval_loss" in e]
    figure = Figure(figsize=(10, 4))
    loss_axis, score_axis = figure.subplots(1, 2)
    if train:
        loss_axis.plot(*zip(*train), marker="o", label="train loss")
    if evals:
        loss_axis.plot(
            [e["epoch"] for e in evals], [e["eval_loss"] for e in evals], marker="o", label="validation loss"
        )
        score_axis.plot(
            [e["epoch"] for e in evals],
            [e.get("eval_balanced_accuracy") for e in evals],
            marker="o",
            color="tab:green",
            label="validation balanced accuracy",
        )
    loss_axis.set(xlabel="epoch", ylabel="loss", title="Loss")
    score_axis.set(xlabel="epoch", ylabel="balanced accuracy", title="Validation balanced accuracy")
    for axis in (loss_axis, score_axis):
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:  # a run without evaluation has no validation curves
            axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def card_model_arguments(model_args, config, pretrained: bool, max_seq_length: int) -> dict:
    """The model arguments this model uses, as its config holds them (defaults and vector sizes resolved); file
    arguments by name only, never a local path."""
    if pretrained:
        name = model_args.model_name_or_path
        return {
            "model_name_or_path": Path(name).name if Path(name).exists() else name,
            "max_seq_length": max_seq_length,
        }
    used = {field.name for field in dataclasses.fields(config)}
    arguments = {k: getattr(config, k) for k in vars(model_args) if k in used}
    if model_args.word_vectors_file:
        arguments["word_vectors"] = Path(model_args.word_vectors_file).name
    elif model_args.learns_title_vectors:
        arguments["word_vectors"] = "learnt from the training titles"
    return arguments | {"max_seq_length": max_seq_length}


def _results_rows(metrics: dict) -> str:
    rows = []
    for split, prefix in SPLIT_METRIC_PREFIXES.items():
        if f"{prefix}_balanced_accuracy" in metrics:
            rows.append(
                f"| {split} | {metrics[f'{prefix}_balanced_accuracy']:.4f} | "
                f"{metrics[f'{prefix}_accuracy']:.4f} | {metrics[f'{prefix}_macro_f1']:.4f} |"
            )
    return "\n".join(rows) or "| - | - | - | - |"


def _eval_results(metrics: dict, data_name: str) -> list[EvalResult]:
    """The `model-index` entries: each split's balanced accuracy, accuracy and macro-F1."""
    results = []
    for split, prefix in SPLIT_METRIC_PREFIXES.items():
        for metric, name in (("balanced_accuracy", "Balanced accuracy"), ("accuracy", "Accuracy"), ("macro_f1", "F1")):
            if f"{prefix}_{metric}" in metrics:
                results.append(
                    EvalResult(
                        task_type="text-classification",
                        dataset_type=data_name,
                        dataset_name=f"MeLi Data Challenge 2019 ({data_name})",
                        dataset_split=split,
                        metric_type="f1" if metric == "macro_f1" else metric,
                        metric_name=name,
                        metric_value=round(float(metrics[f"{prefix}_{metric}"]), 4),
                        metric_args={"average": "macro"} if metric == "macro_f1" else None,
                    )
                )
    return results


def write_model_card(output_dir: str, training_args, card_data: RunCardData) -> Path:
    """Write `README.md` in `output_dir` from the run's card data and training arguments, with a `model-index` of
    the validation and test metrics."""
    import datasets
    import torch
    import transformers

    output_dir = Path(output_dir)
    model_id = training_args.hub_model_id or output_dir.name
    title = training_args.hub_model_id or f"meli-hf {card_data.model}"
    data_name = card_data.data_name
    remote_code = (output_dir / "modeling_meli.py").exists()
    usage = (
        (
            "import meli_hf  # registers the meli-hf architectures; without meli_hf, pass trust_remote_code=True\n"
            "# to both from_pretrained calls (the tokenizer too: AutoTokenizer reads the model's config first)\n"
            if remote_code
            else ""
        )
        + "from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline\n\n"
        f"tokenizer = AutoTokenizer.from_pretrained({json.dumps(model_id)})\n"
        f"model = AutoModelForSequenceClassification.from_pretrained({json.dumps(model_id)})\n"
        'classifier = pipeline("text-classification", model=model, tokenizer=tokenizer)\n'
        'classifier("Zapatillas Nike Air Talle 42", top_k=3)'
    )
    arguments = {name: getattr(training_args, name) for name in CARD_HYPERPARAMETERS}
    teachers = [Path(t).name if Path(t).exists() else t for t in training_args.teacher or []]
    if teachers:
        arguments |= {name: getattr(training_args, name) for name in DISTILLATION_HYPERPARAMETERS}
    arguments |= card_data.model_arguments
    hub_card_data = ModelCardData(
        model_name=title,
        language="es",
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["meli-hf", f"meli-hf-{card_data.model}", "text-classification", "product-categorization"],
        datasets=[data_name] if data_name else None,
        metrics=["balanced_accuracy", "accuracy", "f1"],
        base_model=card_data.base_model,
        eval_results=_eval_results(card_data.metrics, data_name) or None,
    )
    card = ModelCard.from_template(
        hub_card_data,
        template_path=TEMPLATE,
        # Names from the user and the data are shown as written (markdown_text, markdown_code): a `$` or `<b>` in a
        # folder or Hub name is neither math nor HTML.
        title=markdown_text(title),
        model=markdown_code(card_data.model),
        labels=card_data.labels,
        data_name=markdown_code(data_name),
        rows=", ".join(f"{split} {n:,}" for split, n in card_data.rows.items()),
        architecture=markdown_code(card_data.architecture),
        distillation_note=_distillation_note(teachers, training_args),
        remote_code_note=(
            " (code shipped in this repository: `modeling_meli.py`, `configuration_meli.py`)" if remote_code else ""
        ),
        results=_results_rows(card_data.metrics),
        usage=usage,
        predict_command=markdown_code(
            f"python scripts/predict.py --model {shlex.quote(model_id)} 'Zapatillas Nike Air Talle 42'"
        ),
        hyperparameters="\n".join(f"| {k} | {markdown_text(v)} |" for k, v in arguments.items()),
        versions=f"- transformers {transformers.__version__}\n- datasets {datasets.__version__}\n"
        f"- torch {torch.__version__}",
    )
    path = output_dir / "README.md"
    card.save(path)
    return path
