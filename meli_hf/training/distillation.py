"""Teacher targets for distillation (`--teacher`): each training title's top-k categories under one or more trained
checkpoints, kept as two columns of the cached training split.

The full table of teacher probabilities is rows x categories (486k x 642 floats for the real sample), so only the k
most probable categories of each title are kept, as their ids (the student's label ids) and log-probabilities.
The columns are written by `datasets` beside the split's Arrow cache, under a fingerprint of the split, the
teachers' files and k: a second run with the same teachers reads them back without loading any teacher. The loss
that reads them is `ClassBalancedLoss` (meli_hf.trainer).

On its own training titles a teacher has learnt the answers (its top category is the label far more often than on
validation), so there its targets say little more than the labels. With `copies`, `add_teacher_targets` adds titles it
has not seen: copies with words dropped and n-grams cut out, the transfer set of Tang et al. 2019.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, Features, List, Value, concatenate_datasets
from datasets.fingerprint import Hasher

from ..data.collator import TEACHER_IDS, TEACHER_LOG_PROBS
from ..errors import MeliError
from ..inference.ensemble_file import checkpoint_paths, is_ensemble_file
from ..inference.predictor import Predictor
from ..inference.ranking import label_columns
from ..private_apis import dataset_fingerprint

# The smallest normal float32: probabilities that underflow to 0 are stored as its log (about -87), never -inf.
SMALLEST_PROBABILITY = torch.finfo(torch.float32).tiny
# Bump when what the columns hold changes, so that older cached columns are not read back.
TARGETS_VERSION = 1

# Tang et al. 2019, section 3.2, for titles: each word is masked with this probability (dropped here, which every
# teacher's tokenizer reads alike), and this share of the titles keeps only a random n-gram of 1 to 5 words.
WORD_DROP_PROBABILITY = 0.1
NGRAM_PROBABILITY = 0.25
LONGEST_NGRAM = 5
# Bump when the perturbation changes, so that older cached copies (and their teacher targets) are not read back.
PERTURBATION_VERSION = 1


def perturb_title(title: str, rng: np.random.Generator) -> str:
    """A title with words dropped and, now and then, cut to an n-gram; never empty."""
    words = title.split()
    kept = [word for word in words if rng.random() >= WORD_DROP_PROBABILITY] or [words[rng.integers(len(words))]]
    if rng.random() < NGRAM_PROBABILITY:
        length = int(rng.integers(1, LONGEST_NGRAM + 1))
        start = int(rng.integers(max(len(kept) - length, 0) + 1))
        kept = kept[start : start + length]
    return " ".join(kept)


def perturbed_copies(train: Dataset, copies: int, seed: int) -> list[Dataset]:
    """`copies` perturbed copies of `train`'s titles, with the same labels, each cached by `datasets`."""

    def perturb(batch: dict, indices: list[int], copy: int) -> dict:
        rng = np.random.default_rng([seed, copy, indices[0]])  # the same copy whatever the batching
        return {"title": [perturb_title(title, rng) for title in batch["title"]]}

    return [
        train.map(
            perturb,
            batched=True,
            with_indices=True,
            fn_kwargs={"copy": copy},
            new_fingerprint=Hasher.hash([dataset_fingerprint(train), seed, copy, PERTURBATION_VERSION]),
            desc=f"Perturbed titles, copy {copy}",
        )
        for copy in range(1, copies + 1)
    ]


def teacher_signature(teacher: str) -> list:
    """What identifies a teacher's predictions: a local folder by its files' names, sizes and modification times
    (retrained in place, it is asked again); an ensemble file by its members'; a Hub id by its name."""
    path = Path(teacher)
    if not path.exists():
        return [teacher]
    if is_ensemble_file(path):
        return [teacher_signature(member) for member in checkpoint_paths(path)]
    files = sorted(p for p in path.iterdir() if p.is_file())
    return [str(path.resolve()), [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]]


def add_teacher_targets(
    train: Dataset,
    teachers: Sequence[str],
    top_k: int,
    copies: int = 0,
    seed: int = 0,
    batch_size: int = 512,
    device: str | None = None,
    trust_remote_code: bool = False,
) -> Dataset:
    """`train` with `teacher_ids` and `teacher_log_probs`: the `top_k` categories of each title under the teachers
    (their probabilities averaged, renormalised over the student's categories), computed once and cached.

    With `copies`, that many perturbed copies of the titles (`seed` fixes them) follow, taught the same way. Each
    part keeps its own cached targets, so a run with more copies asks the teachers only about the new ones. Rows
    then keep only titles, labels and targets: a course file's word ids cannot follow a perturbed title, so every
    row is tokenized from its title, as `predict.py` tokenizes new titles."""
    if "title" not in train.column_names:
        raise MeliError("--teacher: the training data has no titles to ask the teachers about")
    label_names = train.features["label"].names
    top_k = min(top_k, len(label_names))
    state: dict = {}

    def targets(batch: dict) -> dict:
        if "predictor" not in state:  # loaded only when the columns are not in the cache yet
            predictor = Predictor(
                list(teachers),
                device=device,
                batch_size=batch_size,
                trust_remote_code=trust_remote_code,
                flag="--teacher",
            )
            state["predictor"] = predictor
            state["columns"] = torch.tensor(
                label_columns(predictor.labels, label_names, f"--teacher {' '.join(teachers)}")
            )
        probabilities = state["predictor"].probabilities(batch["title"]).cpu()[:, state["columns"]]
        probabilities = probabilities / probabilities.sum(dim=-1, keepdim=True)
        values, ids = probabilities.topk(top_k, dim=-1)
        return {
            TEACHER_IDS: ids.to(torch.int32).numpy(),
            TEACHER_LOG_PROBS: values.clamp_min(SMALLEST_PROBABILITY).log().numpy(),
        }

    target_features = {
        TEACHER_IDS: List(Value("int32"), length=top_k),
        TEACHER_LOG_PROBS: List(Value("float32"), length=top_k),
    }
    signatures = [teacher_signature(t) for t in teachers]
    members = sum(len(checkpoint_paths(teacher)) for teacher in teachers)  # an ensemble file names several
    parts = [train, *perturbed_copies(train.select_columns(["title", "label"]), copies, seed)]
    taught = [
        part.map(
            targets,
            batched=True,
            batch_size=batch_size,
            features=Features(part.features | target_features),
            new_fingerprint=Hasher.hash([dataset_fingerprint(part), signatures, top_k, TARGETS_VERSION]),
            desc=f"Teacher top-{top_k} ({members} checkpoint{'s' if members > 1 else ''})",
        )
        for part in parts
    ]
    if copies == 0:
        return taught[0]
    return concatenate_datasets([part.select_columns(["title", "label", *target_features]) for part in taught])


def distillation_divergence(
    logits: torch.Tensor, teacher_ids: torch.Tensor, teacher_log_probs: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Per row, KL(teacher_T || student_T): both softened by `temperature`, the teacher over its top-k categories
    (renormalised there), the student over all of them (Hinton et al. 2015)."""
    teacher = (teacher_log_probs.float() / temperature).log_softmax(dim=-1)
    student = (logits / temperature).log_softmax(dim=-1).gather(1, teacher_ids.long())
    return (teacher.exp() * (teacher - student)).sum(dim=-1)
