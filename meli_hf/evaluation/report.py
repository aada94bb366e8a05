"""Where a model fails: an evaluation report of one checkpoint or an ensemble, written by
`scripts/predict.py --evaluate --report DIR` from an `Evaluation`.

With 642 categories a single balanced accuracy hides which categories fail and which pairs are confused. The report
holds per-category precision/recall/F1 (`per_category.csv`), the most confused pairs with example titles
(`confusions.csv`), a roll-up by category group (`per_group.csv`), three pictures (recall against support, a
reliability diagram with the expected calibration error, a heat map of the most confused categories) and
`report.md`, which shows them all.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_fscore_support

from ..errors import MeliDataError, MeliError
from ..files import atomic_folder, read_csv, read_lines
from ..markdown import markdown_code, markdown_text
from .scoring import Evaluation

REPORT_MARKER = "report.md"
# Names from the data are drawn as written: `$x^2$` is a category name, not TeX.
LITERAL_TEXT = {"parse_math": False, "usetex": False}
TOP_ROWS = 20  # worst categories and top confusions shown in report.md
CONFUSION_PAIRS = 200  # rows of confusions.csv
HEATMAP_CATEGORIES = 20
CALIBRATION_BINS = 10


def default_group(category: str) -> str:
    """A category's group when no `--group_by` file says: the first word of its name (`CELLPHONES_ACCESSORIES` ->
    `CELLPHONES`)."""
    return category.split("_")[0]


def read_groups(path: str | Path) -> dict[str, str]:
    """A `category,group` CSV file (a header line, then one row per category)."""
    header, rows = read_csv(read_lines(path), path)
    for column in ("category", "group"):
        if column not in header:
            raise MeliDataError(path, 1, column, f"missing column (header has {', '.join(header)})")
    return {row["category"].strip(): row["group"].strip() for _, row in rows}


def per_category(evaluation: Evaluation) -> list[dict]:
    """Precision, recall, F1, support and predicted count of every category in the references or the predictions,
    sorted by recall (worst first), then by support (largest first)."""
    names = evaluation.class_names
    references, predictions = np.asarray(evaluation.references), np.asarray(evaluation.predictions)
    classes = np.union1d(references, predictions)
    precision, recall, f1, support = precision_recall_fscore_support(
        references, predictions, labels=classes, zero_division=0
    )
    predicted = np.bincount(predictions, minlength=len(names))
    rows = [
        {
            "category": names[c],
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": int(n),
            "predicted": int(predicted[c]),
            "known": c < len(evaluation.label_ids),
        }
        for c, p, r, f, n in zip(classes, precision, recall, f1, support)
    ]
    return sorted(rows, key=lambda row: (row["support"] == 0, row["recall"], -row["support"]))


def confusions(evaluation: Evaluation, limit: int = CONFUSION_PAIRS) -> list[dict]:
    """The most frequent (true, predicted) pairs of errors, with their count, their share of the true category's
    rows and a few example titles."""
    names = evaluation.class_names
    references, predictions = np.asarray(evaluation.references), np.asarray(evaluation.predictions)
    wrong = references != predictions
    pairs, counts = np.unique(np.stack([references[wrong], predictions[wrong]], axis=1), axis=0, return_counts=True)
    support = np.bincount(references, minlength=len(names))
    order = np.argsort(-counts, kind="stable")[:limit]
    return [
        {
            "true": names[pairs[i, 0]],
            "predicted": names[pairs[i, 1]],
            "count": int(counts[i]),
            "share_of_true": float(counts[i] / support[pairs[i, 0]]),
            "examples": evaluation.examples.get((int(pairs[i, 0]), int(pairs[i, 1])), []),
        }
        for i in order
    ]


def per_group(evaluation: Evaluation, categories: list[dict], groups: Mapping[str, str] | None) -> list[dict]:
    """Categories rolled up by group: balanced accuracy over its categories, accuracy of its rows, and the share of
    its rows predicted into the same group (right shelf, wrong category)."""
    group_of = (lambda name: groups.get(name, default_group(name))) if groups else default_group
    names = evaluation.class_names
    references, predictions = np.asarray(evaluation.references), np.asarray(evaluation.predictions)
    row_groups = np.array([group_of(names[c]) for c in references])
    predicted_groups = np.array([group_of(names[c]) for c in predictions])
    rows = []
    for group in sorted(set(row_groups)):
        members = [c for c in categories if c["support"] and group_of(c["category"]) == group]
        mask = row_groups == group
        rows.append(
            {
                "group": group,
                "categories": len(members),
                "support": int(mask.sum()),
                "balanced_accuracy": float(np.mean([c["recall"] for c in members])),
                "accuracy": float(np.mean(references[mask] == predictions[mask])),
                "same_group": float(np.mean(predicted_groups[mask] == group)),
            }
        )
    return sorted(rows, key=lambda row: (row["balanced_accuracy"], -row["support"]))


def calibration(evaluation: Evaluation, bins: int = CALIBRATION_BINS) -> tuple[list[dict], float]:
    """Accuracy against confidence (the top probability) in equal-width bins, and the expected calibration error:
    the rows-weighted mean gap between the two."""
    confidence = np.asarray(evaluation.confidences, dtype=float)
    correct = np.asarray(evaluation.references) == np.asarray(evaluation.predictions)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table, error = [], 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            gap = abs(confidence[mask].mean() - correct[mask].mean())
            error += mask.mean() * gap
            table.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "rows": int(mask.sum()),
                    "confidence": float(confidence[mask].mean()),
                    "accuracy": float(correct[mask].mean()),
                }
            )
    return table, float(error)


def _plot_recall_against_support(categories: list[dict], path: Path) -> None:
    present = [c for c in categories if c["support"]]
    figure = Figure(figsize=(7, 4.5))
    axis = figure.subplots()
    axis.scatter([c["support"] for c in present], [c["recall"] for c in present], s=12, alpha=0.6)
    axis.set(xscale="log", xlabel="support (rows, log scale)", ylabel="recall", title="Recall per category")
    axis.axhline(0.6, color="tab:red", linewidth=0.8, linestyle="--")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _plot_reliability(table: list[dict], error: float, path: Path) -> None:
    figure = Figure(figsize=(5, 5))
    axis = figure.subplots()
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="perfect calibration")
    axis.bar(
        [(b["low"] + b["high"]) / 2 for b in table],
        [b["accuracy"] for b in table],
        width=1.0 / CALIBRATION_BINS,
        edgecolor="black",
        alpha=0.7,
        label="accuracy",
    )
    axis.plot([b["confidence"] for b in table], [b["accuracy"] for b in table], marker="o", color="tab:red")
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=f"Reliability (ECE {error:.3f})")
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _plot_confusion_heatmap(evaluation: Evaluation, pairs: list[dict], path: Path) -> None:
    """Rows-normalised confusion matrix over the categories that take part in the most confusions; the diagonal (the
    right answers) is left out so the confusions set the colour scale."""
    chosen: list[str] = []
    for pair in pairs:
        for name in (pair["true"], pair["predicted"]):
            if name not in chosen and len(chosen) < HEATMAP_CATEGORIES:
                chosen.append(name)
    index = {name: i for i, name in enumerate(evaluation.class_names)}
    ids = [index[name] for name in chosen]
    references, predictions = np.asarray(evaluation.references), np.asarray(evaluation.predictions)
    matrix = np.zeros((len(ids), len(ids)))
    for row, true in enumerate(ids):
        mask = references == true
        for column, predicted in enumerate(ids):
            matrix[row, column] = np.mean(predictions[mask] == predicted) if mask.any() else 0.0
    np.fill_diagonal(matrix, np.nan)
    size = max(4.0, 0.4 * len(ids) + 2)
    figure = Figure(figsize=(size + 1, size))
    axis = figure.subplots()
    image = axis.imshow(matrix, cmap="Reds", vmin=0)
    axis.set_xticks(range(len(ids)), chosen, rotation=90, fontsize=7, **LITERAL_TEXT)
    axis.set_yticks(range(len(ids)), chosen, fontsize=7, **LITERAL_TEXT)
    axis.set(xlabel="predicted", ylabel="true", title="Most confused categories: share of the true category's rows")
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def check_report_folder(folder: str | Path) -> None:
    """A report replaces only an earlier report (or an empty folder): `--report` pointed at a folder of other files
    must not delete them."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MeliError(f"--report {folder}: is a file; give a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / REPORT_MARKER).is_file():
        raise MeliError(f"--report {folder} holds other files than an evaluation report; give a new folder")


def write_report(
    evaluation: Evaluation,
    scores: dict[str, float],
    folder: str | Path,
    models: list[str],
    source: str,
    groups: Mapping[str, str] | None = None,
) -> Path:
    """Write the report files into `folder` and return the path of `report.md`. The files are written to a folder
    beside it that replaces `folder` (an earlier report) only once complete."""
    check_report_folder(folder)
    with atomic_folder(folder) as written:
        _write_report_files(evaluation, scores, written, models, source, groups)
    return Path(folder) / "report.md"


def _write_report_files(
    evaluation: Evaluation,
    scores: dict[str, float],
    folder: Path,
    models: list[str],
    source: str,
    groups: Mapping[str, str] | None,
) -> None:
    categories = per_category(evaluation)
    pairs = confusions(evaluation)
    grouped = per_group(evaluation, categories, groups)
    table, error = calibration(evaluation)

    _write_csv(
        folder / "per_category.csv", categories, ["category", "precision", "recall", "f1", "support", "predicted"]
    )
    confusion_rows = [pair | {f"example_{k + 1}": title for k, title in enumerate(pair["examples"])} for pair in pairs]
    example_columns = [f"example_{k + 1}" for k in range(Evaluation.EXAMPLES_PER_PAIR)]
    _write_csv(
        folder / "confusions.csv", confusion_rows, ["true", "predicted", "count", "share_of_true", *example_columns]
    )
    _write_csv(
        folder / "per_group.csv",
        grouped,
        ["group", "categories", "support", "balanced_accuracy", "accuracy", "same_group"],
    )
    _plot_recall_against_support(categories, folder / "recall_vs_support.png")
    _plot_reliability(table, error, folder / "reliability.png")
    _plot_confusion_heatmap(evaluation, pairs, folder / "confusion_heatmap.png")

    present = [c for c in categories if c["support"]]
    low = sum(c["recall"] < 0.6 for c in present)
    lines = [
        "# Evaluation report",
        "",
        f"- Model: {', '.join(markdown_code(m) for m in models)}" + (" (ensemble)" if len(models) > 1 else ""),
        f"- Data: {markdown_code(source)}, {len(evaluation.references):,} rows of {len(present)} categories",
        "- "
        + ", ".join(f"{name.replace('_', ' ')} **{value:.4f}**" for name, value in scores.items())
        + f", expected calibration error **{error:.4f}**",
        f"- Categories below 0.6 recall: {low} of {len(present)}",
    ]
    if evaluation.unknown:
        lines.append(
            f"- {evaluation.unknown_rows:,} rows of {len(evaluation.unknown)} categories the model does not know "
            "(counted as errors)"
        )
    lines += [
        "",
        f"## The {min(TOP_ROWS, len(present))} worst categories",
        "",
        "| category | recall | precision | F1 | support |",
        "|---|---|---|---|---|",
        *(
            f"| {markdown_text(c['category'])} | {c['recall']:.3f} | {c['precision']:.3f} | {c['f1']:.3f} | "
            f"{c['support']} |"
            for c in present[:TOP_ROWS]
        ),
        "",
        "![recall against support](recall_vs_support.png)",
        "",
        f"## The {min(TOP_ROWS, len(pairs))} top confusions",
        "",
        "| true | predicted | rows | share of true | example |",
        "|---|---|---|---|---|",
        *(
            f"| {markdown_text(p['true'])} | {markdown_text(p['predicted'])} | {p['count']} | "
            f"{p['share_of_true']:.3f} | {markdown_text((p['examples'] or [''])[0])} |"
            for p in pairs[:TOP_ROWS]
        ),
        "",
        "![confusion heat map](confusion_heatmap.png)",
        "",
        "## Confidence",
        "",
        f"Expected calibration error {error:.4f}: the rows-weighted gap between confidence and accuracy.",
        "",
        "![reliability diagram](reliability.png)",
        "",
        "## Groups" + ("" if groups else " (first word of the category name)"),
        "",
        "| group | categories | support | balanced accuracy | accuracy | same group |",
        "|---|---|---|---|---|---|",
        *(
            f"| {markdown_text(g['group'])} | {g['categories']} | {g['support']} | {g['balanced_accuracy']:.3f} | "
            f"{g['accuracy']:.3f} | {g['same_group']:.3f} |"
            for g in grouped[:TOP_ROWS]
        ),
        "",
        "Every category, confusion and group: `per_category.csv`, `confusions.csv`, `per_group.csv`.",
    ]
    (folder / REPORT_MARKER).write_text("\n".join(lines) + "\n", encoding="utf-8")
