"""The checkpoint's README (model card, from `templates/model_card.md`) and its learning-curve figure."""

from __future__ import annotations

from pathlib import Path
from string import Template

import matplotlib

matplotlib.use("Agg")  # files only; no display on training machines
import matplotlib.pyplot as plt  # noqa: E402

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


def plot_learning_curves(log_history: list[dict], path: str | Path) -> None:
    """Train and validation loss, and validation balanced accuracy, per epoch."""
    train = [(e["epoch"], e["loss"]) for e in log_history if "loss" in e and "epoch" in e]
    evals = [e for e in log_history if "eval_loss" in e]
    figure, (loss_axis, score_axis) = plt.subplots(1, 2, figsize=(10, 4))
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
    plt.close(figure)


def _results_rows(metrics: dict) -> str:
    rows = []
    for split, prefix in (("validation", "eval"), ("test", "test")):
        if f"{prefix}_balanced_accuracy" in metrics:
            rows.append(
                f"| {split} | {metrics[f'{prefix}_balanced_accuracy']:.4f} | "
                f"{metrics[f'{prefix}_accuracy']:.4f} | {metrics[f'{prefix}_macro_f1']:.4f} |"
            )
    return "\n".join(rows) or "| - | - | - | - |"


def write_model_card(output_dir: str, training_args, details: dict) -> Path:
    """Write `README.md` in `output_dir` from the run's details (model, data, rows, labels, metrics, arguments)."""
    import datasets
    import torch
    import transformers

    output_dir = Path(output_dir)
    remote_code = (output_dir / "modeling_meli.py").exists()
    load_kwargs = ", trust_remote_code=True" if remote_code else ""
    usage = (
        (
            "import meli_hf  # registers the meli-hf architectures (or pass trust_remote_code=True)\n"
            if remote_code
            else ""
        )
        + "from transformers import pipeline\n\n"
        f'classifier = pipeline("text-classification", model="{training_args.hub_model_id or output_dir}"'
        f"{load_kwargs})\n"
        'classifier("Zapatillas Nike Air Talle 42", top_k=3)'
    )
    arguments = {name: getattr(training_args, name) for name in CARD_HYPERPARAMETERS}
    arguments |= {k: v for k, v in details.get("model_arguments", {}).items() if not k.startswith("_")}
    card = Template(TEMPLATE.read_text()).substitute(
        title=training_args.hub_model_id or f"meli-hf {details.get('model', '')}",
        model=details.get("model", ""),
        labels=details.get("labels", ""),
        data_dir=details.get("data_dir", ""),
        rows=", ".join(f"{split} {n:,}" for split, n in details.get("rows", {}).items()),
        architecture=details.get("architecture", ""),
        remote_code_note=(
            " (code shipped in this repository: `modeling_meli.py`, `configuration_meli.py`)" if remote_code else ""
        ),
        results=_results_rows(details.get("metrics", {})),
        usage=usage,
        output_dir=training_args.hub_model_id or output_dir,
        hyperparameters="\n".join(f"| {k} | {v} |" for k, v in arguments.items()),
        versions=f"- transformers {transformers.__version__}\n- datasets {datasets.__version__}\n"
        f"- torch {torch.__version__}",
    )
    path = output_dir / "README.md"
    path.write_text(card)
    return path
