"""Sparse gradients for the embedding tables of the word-id models, and the AdamW that updates only the rows a batch
touched.

An MLP batch of 256 titles touches a few thousand of its 50,002 word vectors, and a TF-IDF batch a few thousand of
its 312,146 feature rows; dense AdamW reads and writes every row, its gradient and both moments at every step. With
sparse gradients a step costs what the batch holds. The update of a touched row is AdamW's; a row no batch touches
keeps its weights and moments as they are (dense AdamW would decay its moments towards zero and move it by what
they still hold): the "lazy Adam" of `torch.optim.SparseAdam` and TensorFlow's `LazyAdam`. Weight decay, where set,
shrinks the rows a step touches, at that step's learning rate; the learning-rate schedule applies to every row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from .modeling_meli import MeliPreTrainedModel, MeliTfidfForSequenceClassification

# The `--optim` values whose optimizer is `torch.optim.AdamW`, which `LazyAdamW` extends to sparse gradients.
SPARSE_CAPABLE_OPTIMIZERS = ("adamw_torch", "adamw_torch_fused")


def optimizer_obstacle(optim) -> str | None:
    """Why `--optim` (a name or transformers' `OptimizerNames`) cannot take sparse gradients, if it cannot."""
    name = getattr(optim, "value", optim)
    if name in SPARSE_CAPABLE_OPTIMIZERS:
        return None
    return f"--optim {name} cannot update sparse gradients ({' and '.join(SPARSE_CAPABLE_OPTIMIZERS)} can)"


def embedding_tables(model: nn.Module) -> list[nn.Embedding | nn.EmbeddingBag]:
    """The trainable lookup tables of a meli-hf baseline: word and bigram vectors, the TF-IDF weights (none for a
    pretrained transformer, whose tied and position embeddings stay dense)."""
    if not isinstance(model, (MeliPreTrainedModel, MeliTfidfForSequenceClassification)):
        return []
    return [
        module
        for module in model.modules()
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.weight.requires_grad
    ]


def set_sparse_gradients(model: nn.Module, enabled: bool) -> None:
    """Make the backward pass of the model's embedding tables give sparse (touched rows only) or dense gradients."""
    for table in embedding_tables(model):
        table.sparse = enabled


class LazyAdamW(torch.optim.AdamW):
    """`torch.optim.AdamW` that also takes sparse gradients: a parameter with a sparse gradient gets AdamW's update
    on the rows the gradient holds, the others stay as they are (see the module docstring). Dense gradients go
    through `torch.optim.AdamW` itself; the state has AdamW's layout, so checkpoints of either resume with the
    other."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sparse = [
            (group, param)
            for group in self.param_groups
            for param in group["params"]
            if param.grad is not None and param.grad.is_sparse
        ]
        gradients = [param.grad for _, param in sparse]
        for _, param in sparse:
            param.grad = None  # AdamW refuses sparse gradients: it updates the dense ones alone
        try:
            super().step()
        finally:
            for (_, param), gradient in zip(sparse, gradients):
                param.grad = gradient
        for group, param in sparse:
            self._sparse_step(group, param)
        return loss

    def _sparse_step(self, group: dict, param: torch.Tensor) -> None:
        grad = param.grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
        state = self.state[param]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["step"] += 1
        step = state["step"].item()
        learning_rate, weight_decay = float(group["lr"]), group["weight_decay"]
        beta1, beta2 = group["betas"]

        weights = param.index_select(0, rows)
        if weight_decay:
            weights.mul_(1 - learning_rate * weight_decay)
        exp_avg = state["exp_avg"].index_select(0, rows).lerp_(values, 1 - beta1)
        exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(values, values, value=1 - beta2)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        denominator = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(group["eps"])
        weights.addcdiv_(exp_avg, denominator, value=-learning_rate / (1 - beta1**step))
        param.index_copy_(0, rows, weights)


def gradient_norm(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all gradients together, sparse ones included (`clip_grad_norm_` cannot read those); a sparse
    gradient is coalesced in place first, since repeated rows of an uncoalesced one would be counted apart."""
    squares = []
    for param in parameters:
        if param.grad is None:
            continue
        if param.grad.is_sparse:
            param.grad = param.grad.coalesce()
            squares.append(param.grad.values().float().pow(2).sum())
        else:
            squares.append(param.grad.float().pow(2).sum())
    return torch.stack(squares).sum().sqrt() if squares else torch.tensor(0.0)


def clip_gradient_norm_(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_` for dense and sparse gradients: scale all of them so that their norm is at
    most `max_norm`; returns the norm before clipping."""
    parameters = [param for param in parameters if param.grad is not None]
    total = gradient_norm(parameters)
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for param in parameters:
        param.grad.mul_(scale.to(param.grad.device, param.grad.dtype))
    return total
