"""`MeliTrainer`, the one `Trainer` of every architecture, and its class-balanced loss. It writes no file the
`Trainer` would not: its model card comes from `model_card`, where transformers would write its own."""

from __future__ import annotations

import logging

import torch
from torch import nn
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.training_args import ParallelMode

from ..data.collator import TEACHER_COLUMNS, TEACHER_IDS, TEACHER_LOG_PROBS, WordIdBatches
from ..errors import MeliError
from ..private_apis import TrainerHooks
from .arguments import optimizer_obstacle
from .distillation import distillation_divergence
from .model_card import RunCardCallback, RunCardData, write_model_card
from .optimization import (
    LazyAdamW,
    clip_gradient_norm_,
    embedding_tables,
    gradient_norm,
    set_sparse_gradients,
)

logger = logging.getLogger(__name__)


class ClassBalancedLoss:
    """Cross-entropy with per-class weights and label smoothing, the Trainer's `compute_loss_func` for every
    architecture, and with `--teacher` the distillation term.

    Balanced accuracy scores each category alike, while plain cross-entropy favours the frequent ones. Weights are
    scaled so that their mean over the training rows is 1, which keeps the learning rate's meaning. The power
    (`class_balance`) and the smoothing (`label_smoothing_factor`) are read from `args` at every step, so that a
    hyperparameter-search trial, which sets them on the Trainer's arguments, trains with its own.

    A batch with teacher targets (`teacher`, set by `MeliTrainer.compute_loss` for that batch) is trained on
    `(1 - alpha) * CE(labels) + alpha * T^2 * KL(teacher_T || student_T)` per row, both terms weighted by the row's
    class weight; T^2 keeps the soft term's gradients on the scale of the hard one's (Hinton et al. 2015).
    """

    def __init__(self, label_counts: torch.Tensor, args):
        self.label_counts = label_counts.double()
        self.args = args
        self._weights: dict[float, torch.Tensor] = {}
        self.teacher: dict[str, torch.Tensor] | None = None

    @property
    def weights(self) -> torch.Tensor:
        power = float(self.args.class_balance)
        if power not in self._weights:
            counts = self.label_counts
            weights = (counts.sum() / (len(counts) * counts.clamp(min=1))) ** power
            self._weights[power] = (weights * counts.sum() / (weights * counts).sum()).float()
        return self._weights[power]

    def __call__(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        # A model whose prediction combines parts trained apart trains each part on its own loss; with
        # `--distill_linear_part false` the linear part (the second, as `MeliClassifierOutput` says) learns from the
        # labels alone.
        parts = outputs.get("part_logits") or (outputs["logits"],)
        losses = sum(
            self.row_losses(logits.float(), labels, distill=part == 0 or self.args.distill_linear_part)
            for part, logits in enumerate(parts)
        )
        # The Trainer expects the loss normalised over the whole accumulated batch when it passes its size.
        return losses.mean() if num_items_in_batch is None else losses.sum() / num_items_in_batch

    def row_losses(self, logits: torch.Tensor, labels: torch.Tensor, distill: bool = True) -> torch.Tensor:
        """The loss of each row of the batch; `distill`: with the teacher's term, where the batch has targets."""
        weights = self.weights.to(logits.device)
        losses = nn.functional.cross_entropy(
            logits,
            labels,
            weight=weights,
            reduction="none",
            # The Trainer skips its own label smoother when a `compute_loss_func` is given, so it is applied here.
            label_smoothing=self.args.label_smoothing_factor,
        )
        if distill and self.teacher is not None and (alpha := self.args.distill_alpha) > 0:
            temperature = self.args.distill_temperature
            divergence = distillation_divergence(
                logits, self.teacher[TEACHER_IDS], self.teacher[TEACHER_LOG_PROBS], temperature
            )
            losses = (1 - alpha) * losses + alpha * temperature**2 * weights[labels] * divergence
        return losses


def sparse_gradient_obstacle(args) -> str | None:
    """Why this run cannot train embedding tables with sparse gradients, if it cannot."""
    if (obstacle := optimizer_obstacle(args.optim)) is not None:
        return obstacle
    if args.deepspeed or args.fsdp:
        return "DeepSpeed and FSDP shard dense parameters only"
    if args.parallel_mode == ParallelMode.DISTRIBUTED and torch.distributed.get_backend() != "gloo":
        return f"the {torch.distributed.get_backend()} backend cannot sum sparse gradients across processes (gloo can)"
    return None


class CatchUpSparseRows(TrainerCallback):
    """Before every evaluation and save, and after the last step, `LazyAdamW` brings the rows that batches skipped
    up to date, so that the model evaluated and saved is the one dense AdamW would have trained."""

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper holds the optimizer
        if isinstance(optimizer, LazyAdamW) and (
            control.should_evaluate or control.should_save or control.should_training_stop
        ):
            optimizer.catch_up()

    on_epoch_end = on_step_end


class MeliTrainer(TrainerHooks, Trainer):
    """The `Trainer`, writing meli-hf's model card wherever it would write its own (also before a Hub push), and
    training the baselines' embedding tables with sparse gradients (`--sparse_embeddings`, training.optimization)."""

    def __init__(self, *args, card_data: RunCardData | None = None, **kwargs):
        """`card_data`: what the run's model card says; the Trainer's evaluations fill in its metrics. Without it
        (a search's trials) no card is written."""
        super().__init__(*args, **kwargs)
        self.card_data = card_data
        if card_data is not None:
            self.add_callback(RunCardCallback(card_data))
        self.sparse_gradients = False
        self.add_callback(CatchUpSparseRows)

    def uses_sparse_gradients(self, model) -> bool:
        """`--sparse_embeddings`: by default on wherever the model has embedding tables and the run can update them
        sparsely; where it cannot, an explicit `true` is refused and the default trains dense, saying why."""
        requested = self.args.sparse_embeddings
        if requested is False:
            return False
        tables = len(embedding_tables(model))
        if not tables:
            if requested:
                raise MeliError(f"--sparse_embeddings: {type(model).__name__} has no embedding tables it applies to")
            return False
        obstacle = sparse_gradient_obstacle(self.args)
        if obstacle is not None:
            if requested:
                raise MeliError(f"--sparse_embeddings: {obstacle}")
            logger.info("dense embedding gradients: %s", obstacle)
            return False
        logger.info("sparse embedding gradients: %d table%s, LazyAdamW", tables, "s" if tables > 1 else "")
        return True

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Teacher targets are no model input: the loss reads them for this batch (training batches only have them).
        teacher = {name: inputs.pop(name) for name in TEACHER_COLUMNS if name in inputs}
        if not teacher:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self.compute_loss_func.teacher = teacher
        try:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            self.compute_loss_func.teacher = None

    def create_optimizer(self, model=None):
        model = self.model if model is None else model
        if self.optimizer is None:
            # Before the model is wrapped for DDP, which reads which parameters get sparse gradients.
            self.sparse_gradients = self.uses_sparse_gradients(model)
            set_sparse_gradients(model, self.sparse_gradients)
            _, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            self.optimizer_cls_and_kwargs = (LazyAdamW, optimizer_kwargs) if self.sparse_gradients else None
        return super().create_optimizer(model)

    def clip_gradients(self, model):
        # `clip_grad_norm_` cannot read sparse gradients.
        if not self.sparse_gradients:
            return self.library_clip_gradients(model)
        self.accelerator.unscale_gradients()
        return clip_gradient_norm_(model.parameters(), self.args.max_grad_norm)

    def total_gradient_norm(self, model, grad_norm=None):
        if grad_norm is None and self.sparse_gradients:
            self.accelerator.unscale_gradients()
            grad_norm = gradient_norm(model.parameters())
        return self.library_total_gradient_norm(model, grad_norm)

    def train_sampler(self, train_dataset=None):
        train_dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.args.train_sampling_strategy == "group_by_length" and isinstance(train_dataset, WordIdBatches):
            # The Trainer would read the lengths row by row (minutes at the course's size); Arrow has them at once.
            batch_size = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return LengthGroupedSampler(batch_size, lengths=train_dataset.lengths())
        return self.library_train_sampler(train_dataset)

    def create_model_card(self, *args, **kwargs) -> None:
        if self.card_data is not None and self.is_world_process_zero():
            write_model_card(self.args.output_dir, self.args, self.card_data)
