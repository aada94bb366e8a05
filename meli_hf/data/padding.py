"""Padding word ids into a batch with numpy alone: what training's collator and the torch-free ONNX predictor share."""

from __future__ import annotations

import numpy as np


def pad_ids(lengths: np.ndarray, values: np.ndarray, pad_token_id: int) -> tuple[np.ndarray, np.ndarray]:
    """`input_ids` and `attention_mask` (int64, rows x the longest row, at least 1 wide) of rows whose ids are
    `values` laid end to end, `lengths[i]` of them for row i."""
    width = max(int(lengths.max(initial=0)), 1)
    attention_mask = np.arange(width) < lengths[:, None]
    input_ids = np.full((len(lengths), width), pad_token_id, dtype=np.int64)
    # Row-major boolean assignment fills each row's leading positions in order.
    input_ids[attention_mask] = values
    return input_ids, attention_mask.astype(np.int64)
