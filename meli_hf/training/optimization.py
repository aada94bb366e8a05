"""Sparse gradients for the embedding tables of the word-id models, and the AdamW that updates only the rows a batch
touched.

An MLP batch of 256 titles touches a few thousand of its 50,002 word vectors, and a TF-IDF batch a few thousand of
its 312,146 feature rows; dense AdamW reads and writes every row, its gradient and both moments at every step. With
sparse gradients a step costs what the batch holds, and `LazyAdamW` still trains every row as dense AdamW does:
a row that batches skip catches up on its skipped steps when it is next read (see `LazyAdamW`). The "lazy Adam" of
`torch.optim.SparseAdam` and TensorFlow's `LazyAdam`, which freezes skipped rows instead, learns rare words
far more slowly and scored lower on the real sample (BENCHMARKS.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from ..models.modeling_meli import MeliPreTrainedModel, MeliTfidfForSequenceClassification

# The `--optim` values whose optimizer is `torch.optim.AdamW`, which `LazyAdamW` extends to sparse gradients.
CATCH_UP_ROWS = 16_384  # rows brought up to date at once by `LazyAdamW.catch_up`


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
    """`torch.optim.AdamW` that also takes sparse gradients, at the cost of the rows they hold.

    A step of dense AdamW moves every row: a row its batch lacks has a zero gradient, but its moments, decaying,
    keep moving it (about ten times its last update in all, at the default betas), which is how rare words learn.
    Here a row is brought up to date only when a batch holds it again, or before the model is evaluated or saved
    (`catch_up`): the updates of the steps it skipped, and their weight decay, are applied at once in closed form
    (a geometric series of its decaying moments, at the learning rate and bias correction of the step that catches
    up, eps neglected). The rows follow dense AdamW's path at the cost of the rows a batch holds; only a row's
    gradient is taken where it stood when last brought up to date. Dense gradients go through `torch.optim.AdamW`
    itself; the state has AdamW's layout plus, for a sparse parameter, `row_step` (the step each row is current
    to), so checkpoints of either resume with the other."""

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

    @torch.no_grad()
    def catch_up(self) -> None:
        """Bring every row of the sparse parameters up to the last step (before evaluating or saving the model)."""
        for group in self.param_groups:
            for param in group["params"]:
                state = self.state.get(param, {})
                if "row_step" in state:
                    step = int(state["step"].item())
                    rows = (state["row_step"] < step).nonzero().flatten()
                    # In blocks: the whole table at once would hold several copies of it (the TF-IDF model's: 0.8 GB).
                    for block in rows.split(CATCH_UP_ROWS):
                        weights, exp_avg, exp_avg_sq = self._read_rows(param, block)
                        self._apply_skipped_steps(
                            group, weights, exp_avg, exp_avg_sq, step - state["row_step"][block], step
                        )
                        self._write_rows(param, block, weights, exp_avg, exp_avg_sq, step)

    def _read_rows(self, param: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Copies of the weights and both moments of `rows`."""
        state = self.state[param]
        return tuple(tensor.index_select(0, rows) for tensor in (param, state["exp_avg"], state["exp_avg_sq"]))

    def _write_rows(self, param, rows, weights, exp_avg, exp_avg_sq, step: int) -> None:
        """Store `rows`' weights and moments back, current to `step`."""
        state = self.state[param]
        param.index_copy_(0, rows, weights)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        state["row_step"][rows] = step

    def _sparse_step(self, group: dict, param: torch.Tensor) -> None:
        grad = param.grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
        state = self.state[param]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if "row_step" not in state:  # a new state, or dense AdamW's (every row current)
            state["row_step"] = torch.full(
                (len(param),), int(state["step"].item()), dtype=torch.int64, device=param.device
            )
        # The batch's rows are read once: brought up to the last step, then given this step's update.
        weights, exp_avg, exp_avg_sq = self._read_rows(param, rows)
        last_step = int(state["step"].item())
        if last_step:
            self._apply_skipped_steps(
                group, weights, exp_avg, exp_avg_sq, last_step - state["row_step"][rows], last_step
            )
        state["step"] += 1
        step = last_step + 1
        learning_rate, weight_decay = float(group["lr"]), group["weight_decay"]
        beta1, beta2 = group["betas"]
        if weight_decay:
            weights.mul_(1 - learning_rate * weight_decay)
        exp_avg.lerp_(values, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(values, values, value=1 - beta2)
        denominator = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(group["eps"])
        weights.addcdiv_(exp_avg, denominator, value=-learning_rate / (1 - beta1**step))
        self._write_rows(param, rows, weights, exp_avg, exp_avg_sq, step)

    @staticmethod
    def _apply_skipped_steps(group: dict, weights, exp_avg, exp_avg_sq, skipped: torch.Tensor, step: int) -> None:
        """In place on rows read with `_read_rows`: dense AdamW's zero-gradient steps, `skipped` of them per row, up
        to `step` (at least 1)."""
        skipped = skipped.to(weights.dtype).unsqueeze(1)
        learning_rate, weight_decay = float(group["lr"]), group["weight_decay"]
        beta1, beta2 = group["betas"]
        ratio = beta1 / math.sqrt(beta2)  # an update's shrink per zero-gradient step: m by beta1, sqrt(v) by its root
        bias_correction = math.sqrt(1 - beta2**step) / (1 - beta1**step)
        if weight_decay:
            weights.mul_((1 - learning_rate * weight_decay) ** skipped)
        series = ratio * (1 - ratio**skipped) / (1 - ratio)  # sum of ratio**j for j = 1 .. skipped
        weights.sub_(learning_rate * bias_correction * series * exp_avg / (exp_avg_sq.sqrt() + group["eps"]))
        exp_avg.mul_(beta1**skipped)
        exp_avg_sq.mul_(beta2**skipped)


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
