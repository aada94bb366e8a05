"""One entry to every predictor: ONNX copies get an `OnnxPredictor` (torch is never imported), checkpoints and Hub
ids a `Predictor`. What `predict.py`, `serve.py` and the benchmarks load a `--model` with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import MeliError
from .ensemble_file import checkpoint_paths
from .onnx_predictor import OnnxPredictor, is_onnx_copy
from .ranking import RankingPredictor


def serves_onnx_copies(models: Sequence[str | Path]) -> bool:
    """Whether `models` (folders, Hub ids, ensemble files) are all ONNX copies; a mix of copies and checkpoints is
    refused."""
    paths = [path for model in models for path in checkpoint_paths(model)]
    copies = [is_onnx_copy(path) for path in paths]
    if any(copies) and not all(copies):
        raise MeliError(
            f"--model: {paths[copies.index(True)]} is an ONNX copy and {paths[copies.index(False)]} is not; an "
            "ensemble is of ONNX copies alone or of checkpoints alone"
        )
    return bool(copies) and all(copies)


def load_predictor(
    models: Sequence[str | Path],
    batch_size: int = 256,
    max_length: int | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    onnx_threads: int | None = None,
) -> RankingPredictor:
    """The predictor of `models`. `onnx_threads`: onnxruntime's threads per forward pass (torch's are
    process-wide, the caller's to set)."""
    if serves_onnx_copies(models):
        if device not in (None, "cpu"):
            raise MeliError(f"--device {device}: ONNX copies run on the CPU; serve the checkpoint for a GPU")
        return OnnxPredictor(models, batch_size=batch_size, max_length=max_length, threads=onnx_threads)
    from .predictor import Predictor

    return Predictor(
        models, device=device, batch_size=batch_size, max_length=max_length, trust_remote_code=trust_remote_code
    )
