"""Batches of word ids for the MLP/CNN/LSTM baselines, served straight from Arrow.

`datasets` turns each fetched batch into Python lists and then into one dict per row, and a padding collator
walks those rows again; for titles of a handful of word ids that per-row work dominates an epoch of the small
baselines. `WordIdBatches` hands the `DataLoader` the Arrow batch itself, and `WordIdCollator` pads it from the
list offsets in a few vectorised numpy operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ..private_apis import has_indices_mapping
from .padding import pad_ids

if TYPE_CHECKING:  # prediction pads word ids with `WordIdCollator` and never imports `datasets`
    from datasets import Dataset

# The teacher targets of a distilled run (meli_hf.distillation): each row's top-k categories and log-probabilities.
TEACHER_IDS, TEACHER_LOG_PROBS = "teacher_ids", "teacher_log_probs"
TEACHER_COLUMNS = (TEACHER_IDS, TEACHER_LOG_PROBS)


class WordIdBatches(torch.utils.data.Dataset):
    """A word-id `Dataset` (`input_ids`, `label`, teacher targets) whose batched reads return an Arrow table, not row
    dicts."""

    def __init__(self, dataset: Dataset):
        served = ("input_ids", "label", *TEACHER_COLUMNS)
        dataset = dataset.select_columns([c for c in served if c in dataset.column_names])
        if has_indices_mapping(dataset):
            # A subset (e.g. --max_train_samples) is written out contiguously once (cached), so that a batch is
            # one `take` on the memory-mapped table.
            dataset = dataset.flatten_indices()
        self.dataset = dataset
        # The Arrow cache is written in small record batches; a random `take` pays for every chunk, so the two
        # columns served here are made one contiguous table (about 200 MB for the course's 4.9M titles).
        self.table = dataset.data.table.combine_chunks()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return self.dataset[index]

    def __getitems__(self, indices: list[int]) -> pa.Table:
        return self.table.take(indices)

    def lengths(self) -> list[int]:
        """Word ids per row, read from the Arrow list offsets at once (for `group_by_length` sampling)."""
        return pc.list_value_length(self.table.column("input_ids")).to_numpy(zero_copy_only=False).tolist()


@dataclass
class WordIdCollator:
    """Pads token ids (word ids, or any tokenizer's) into `input_ids` and `attention_mask` tensors (plus `labels`
    and teacher targets, k per row), from an Arrow batch or from rows."""

    pad_token_id: int = 0

    def __call__(self, batch: pa.Table | list[dict]) -> dict[str, torch.Tensor]:
        if isinstance(batch, pa.Table):
            ids = batch.column("input_ids").combine_chunks()
            offsets = ids.offsets.to_numpy()
            lengths = np.diff(offsets)
            values = ids.values.to_numpy()[offsets[0] : offsets[-1]]
            labels = batch.column("label").to_numpy() if "label" in batch.column_names else None
            teacher = {
                name: batch.column(name).combine_chunks().flatten().to_numpy().reshape(len(batch), -1)
                for name in TEACHER_COLUMNS
                if name in batch.column_names
            }
        else:
            rows = [row["input_ids"] for row in batch]
            lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
            values = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
            label_key = next((k for k in ("labels", "label") if k in batch[0]), None)
            labels = np.array([row[label_key] for row in batch]) if label_key else None
            teacher = {name: np.array([row[name] for row in batch]) for name in TEACHER_COLUMNS if name in batch[0]}
        input_ids, attention_mask = pad_ids(lengths, values, self.pad_token_id)
        padded = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
        if labels is not None:
            padded["labels"] = torch.from_numpy(labels.astype(np.int64))
        return padded | {name: torch.tensor(values) for name, values in teacher.items()}  # Arrow memory is read-only
