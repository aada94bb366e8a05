"""Batches of word ids for the MLP/CNN/LSTM baselines."""

from dataclasses import dataclass
from itertools import chain

import numpy as np
import torch


@dataclass
class WordIdCollator:
    """Pads `input_ids` lists into tensors with an `attention_mask`, in one vectorised pass.

    `DataCollatorWithPadding` pads example by example through the tokenizer; for titles of a handful of word ids
    that per-example work dominates an epoch of the small baselines.
    """

    pad_token_id: int = 0

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        ids = [feature["input_ids"] for feature in features]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        width = max(int(lengths.max()), 1)
        attention_mask = np.arange(width) < lengths[:, None]
        input_ids = np.full((len(ids), width), self.pad_token_id, dtype=np.int64)
        # Row-major boolean assignment fills each row's leading positions in order.
        input_ids[attention_mask] = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask.astype(np.int64)),
        }
        label_key = "labels" if "labels" in features[0] else "label" if "label" in features[0] else None
        if label_key is not None:
            batch["labels"] = torch.tensor([feature[label_key] for feature in features], dtype=torch.long)
        return batch
