"""Compact serving copies of checkpoints: the word embeddings and the linear part, most of a word model's bytes
(802 of the 882 MB of the best LSTM's), stored as int8 tables with a scale per row (`config.int8_tables`).

The copy is a checkpoint like any other (Auto classes, `predict.py`, the Hub); what it predicts is what
`predict.py --evaluate` measures on it, since the int8 values are what is saved and loaded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from ..errors import MeliError
from ..files import atomic_folder, check_output_spares_inputs, is_checkpoint_folder
from ..hub import load_checkpoint

CARD_FILES = ("README.md", "learning_curves.png", "all_results.json")
COMPACT_NOTE = """

## Compact copy

This is a serving copy of `{source}` made by `scripts/compact.py`: its word embeddings and its linear part are
stored as int8 with one float scale per row ({before:.0f} MB -> {after:.0f} MB). The figures above are the
float32 checkpoint's; `python scripts/predict.py --model THIS_FOLDER --input test.csv --evaluate` measures this
copy. It predicts; to train on, start from the float32 checkpoint.
"""


def weights_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("model*.safetensors"))


def compact_checkpoint(model_dir: str | Path, output_dir: str | Path) -> tuple[int, int]:
    """Write an int8-table copy of the checkpoint `model_dir` into `output_dir` (a new folder, complete or not at
    all); the sizes of the weights before and after, in bytes."""
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if not is_checkpoint_folder(model_dir):
        raise MeliError(f"--model {model_dir}: not a checkpoint folder (no config.json)")
    check_output_spares_inputs("--output", output_dir, {"--model": [model_dir]}, replaces_folder=True)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise MeliError(f"--output {output_dir} exists; give a new folder (nothing is overwritten)")
    tokenizer, model = load_checkpoint(str(model_dir), "--model", trust_remote_code=False, dtype=torch.float32)
    if not hasattr(model, "with_int8_tables"):
        raise MeliError(
            f"--model {model_dir} is a {model.config.model_type} checkpoint: only mlp, cnn and lstm checkpoints have "
            "tables to store as int8 (the TF-IDF model stores float16 already)"
        )
    if model.config.int8_tables:
        raise MeliError(f"--model {model_dir} is a compact copy already")
    compact = model.with_int8_tables()
    with atomic_folder(output_dir) as folder:
        compact.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        for name in CARD_FILES:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, folder / name)
        before, after = weights_size(model_dir), weights_size(folder)
        if (folder / "README.md").is_file():
            note = COMPACT_NOTE.format(source=model_dir.name, before=before / 1e6, after=after / 1e6)
            with (folder / "README.md").open("a", encoding="utf-8") as card:
                card.write(note)
    return before, after
