"""Serving copies of checkpoints, in one of two formats (`scripts/compact.py --format`):

- `onnx` (the default): `model.onnx` (its weights in `model.onnx.data`), `tokenizer.json` and
  `serving_config.json`, read by `OnnxPredictor` with onnxruntime, tokenizers and numpy alone (no torch); the word
  embeddings and the linear part are int8 tables (gathered as int8, then scaled) unless `int8_tables=False`. For
  mlp, cnn, lstm and tfidf checkpoints.
- `torch`: a checkpoint like any other (Auto classes, the Hub) whose word embeddings and linear part, most of a word
  model's bytes (802 of the 882 MB of the best LSTM's), are int8 tables with a scale per row (`config.int8_tables`).

What a copy predicts is what `predict.py --evaluate` measures on it, since the int8 values are what is saved.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ..data.tokenization import MODEL_MAX_LENGTH
from ..errors import MeliError
from ..files import atomic_folder, check_output_spares_inputs, is_checkpoint_folder
from ..hub import load_checkpoint
from ..models.modeling_meli import BIGRAM_HASH_MULTIPLIER
from .onnx_predictor import (
    COPY_FORMAT,
    COPY_FORMAT_VERSION,
    ONNX_MODEL_FILE,
    SERVING_CONFIG_FILE,
    TOKENIZER_FILE,
    is_onnx_copy,
)
from .predictor import UNSET_MODEL_MAX_LENGTH as UNSET

FORMATS = ("onnx", "torch")
CARD_FILES = ("README.md", "learning_curves.png", "all_results.json")
COPY_NOTES = {
    "torch": """

## Compact copy

This is a serving copy of `{source}` made by `scripts/compact.py --format torch`: its word embeddings and its linear
part are stored as int8 with one float scale per row ({before:.0f} MB -> {after:.0f} MB). The figures above are the
float32 checkpoint's; `python scripts/predict.py --model THIS_FOLDER --input test.csv --evaluate` measures this
copy. It predicts; to train on, start from the float32 checkpoint.
""",
    "onnx": """

## ONNX copy

This is an ONNX serving copy of `{source}` made by `scripts/compact.py` ({tables}; {before:.0f} MB -> {after:.0f}
MB): `model.onnx` (`input_ids` and `attention_mask` in, `probabilities` out), `tokenizer.json` and
`serving_config.json` (the categories and the settings the graph was built with). `scripts/predict.py` and
`scripts/serve.py` read it with onnxruntime, tokenizers and numpy, without torch. The figures above are the
checkpoint's; `python scripts/predict.py --model THIS_FOLDER --input test.csv --evaluate` measures this copy.
""",
}


def weights_size(folder: Path) -> int:
    patterns = ("model*.safetensors", "*.onnx", "*.onnx.data")
    return sum(path.stat().st_size for pattern in patterns for path in folder.glob(pattern))


def compact_checkpoint(
    model_dir: str | Path, output_dir: str | Path, format: str = "onnx", int8_tables: bool = True
) -> tuple[int, int]:
    """Write a serving copy of the checkpoint `model_dir` into `output_dir` (a new folder, complete or not at all);
    the sizes of the weights before and after, in bytes. `int8_tables=False` keeps an ONNX copy's tables float32."""
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if format not in FORMATS:
        raise MeliError(f"--format {format}: one of {', '.join(FORMATS)}")
    if not int8_tables and format != "onnx":
        raise MeliError("--float32_tables goes with --format onnx: the torch copy exists for its int8 tables")
    if is_onnx_copy(model_dir):
        raise MeliError(f"--model {model_dir} is an ONNX copy already; give the checkpoint it came from")
    if not is_checkpoint_folder(model_dir):
        raise MeliError(f"--model {model_dir}: not a checkpoint folder (no config.json)")
    check_output_spares_inputs("--output", output_dir, {"--model": [model_dir]}, replaces_folder=True)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise MeliError(f"--output {output_dir} exists; give a new folder (nothing is overwritten)")
    tokenizer, model = load_checkpoint(str(model_dir), "--model", trust_remote_code=False, dtype=torch.float32)
    model_type = model.config.model_type
    if format == "torch" and not hasattr(model, "with_int8_tables"):
        raise MeliError(
            f"--model {model_dir} is a {model_type} checkpoint: only mlp, cnn and lstm checkpoints have tables to "
            "store as int8 (the TF-IDF model stores float16 already; --format onnx copies it)"
        )
    if format == "torch" and model.config.int8_tables:
        raise MeliError(f"--model {model_dir} is a compact copy already")
    if format == "onnx" and not model_type.startswith("meli-"):
        raise MeliError(
            f"--model {model_dir} is a {model_type} checkpoint: ONNX copies are made of mlp, cnn, lstm and tfidf "
            "checkpoints (a transformer serves from its checkpoint, or through optimum's ONNX export)"
        )
    model.eval()
    with atomic_folder(output_dir) as folder:
        if format == "torch":
            model.with_int8_tables().save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            tables = ""
        else:
            tables = _write_onnx_copy(model, tokenizer, folder, model_dir.name, int8_tables)
        for name in CARD_FILES:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, folder / name)
        before, after = weights_size(model_dir), weights_size(folder)
        note = COPY_NOTES[format].format(source=model_dir.name, before=before / 1e6, after=after / 1e6, tables=tables)
        card = folder / "README.md"
        if not card.is_file():  # a checkpoint without a card (not written by train.py): the copy still says its source
            card.write_text(f"# {output_dir.name}\n", encoding="utf-8")
        with card.open("a", encoding="utf-8") as stream:
            stream.write(note)
    return before, after


def _write_onnx_copy(model, tokenizer, folder: Path, source: str, int8_tables: bool) -> str:
    """`model.onnx`, `tokenizer.json` and `serving_config.json` of `model` into `folder`; what its tables are."""
    from .onnx_export import onnx_model, save_with_mapped_weights

    config = model.config
    has_tables = hasattr(model, "with_int8_tables")
    if has_tables and int8_tables and not config.int8_tables:
        model = model.with_int8_tables()
    save_with_mapped_weights(onnx_model(model), folder / ONNX_MODEL_FILE)
    encoder = tokenizer.backend_tokenizer
    encoder.no_padding()
    encoder.no_truncation()  # the predictor truncates at max_length (or at its own --max_length)
    encoder.save(str(folder / TOKENIZER_FILE))
    serving_config = {
        "format": COPY_FORMAT,
        "format_version": COPY_FORMAT_VERSION,
        "source": source,
        "model_type": config.model_type,
        "labels": [config.id2label[i] for i in range(config.num_labels)],
        "max_length": int(tokenizer.model_max_length) if tokenizer.model_max_length < UNSET else MODEL_MAX_LENGTH,
        "pad_token_id": int(tokenizer.pad_token_id or 0),
        "unk_token_id": int(tokenizer.unk_token_id),
        "vocab_size": config.vocab_size,
        "int8_tables": bool(has_tables and (int8_tables or config.int8_tables)),
        "bigram_hashing": {
            "multiplier": BIGRAM_HASH_MULTIPLIER,
            "linear_bigram_buckets": getattr(config, "linear_bigram_buckets", 0),
            "bigram_buckets": getattr(config, "bigram_buckets", 0),
        },
    }
    (folder / SERVING_CONFIG_FILE).write_text(json.dumps(serving_config, indent=2) + "\n", encoding="utf-8")
    if not has_tables:
        return "TF-IDF weights as saved"
    return "int8 embedding and linear-part tables" if serving_config["int8_tables"] else "float32 tables"
