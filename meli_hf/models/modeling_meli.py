"""Baselines of the MeLi 2019 course as `PreTrainedModel`s.

The word-embedding models are laid out as in BERT: building blocks (embeddings, the three encoders, the head), one
`MeliPreTrainedModel` base, then one `...ForSequenceClassification` class per architecture that only names its
config and encoder; any of them can add a linear classifier over its words and hashed bigrams (wide & deep). The
TF-IDF linear classifier shares only the word ids and the bigram hashing with them.
Padding never reaches a prediction: the MLP averages real tokens only, the CNN max-pools valid windows only,
the LSTM reads packed sequences, the TF-IDF model gives padding no weight.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_meli import MeliCNNConfig, MeliLSTMConfig, MeliMLPConfig, MeliTfidfConfig, MeliWordConfig

# fastText's bigram hash multiplier: (first * M + second) mod buckets spreads consecutive word-id pairs.
BIGRAM_HASH_MULTIPLIER = 116_049_371


def hashed_bigrams(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, buckets: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bucket ids of the consecutive word pairs of each title, and the mask of those whose two words are real tokens
    (int64 holds the product for any vocabulary)."""
    bigram_mask = attention_mask[:, :-1] * attention_mask[:, 1:]
    return (input_ids[:, :-1] * BIGRAM_HASH_MULTIPLIER + input_ids[:, 1:]) % buckets, bigram_mask


def word_and_bigram_features(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, vocab_size: int, buckets: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature ids of each title (its word ids, then its bigram buckets placed after the vocabulary) and the mask
    of the real ones; the words alone when `buckets` is 0."""
    if not buckets:
        return input_ids, attention_mask
    bigram_ids, bigram_mask = hashed_bigrams(input_ids, attention_mask, buckets)
    return torch.cat([input_ids, bigram_ids + vocab_size], dim=1), torch.cat([attention_mask, bigram_mask], dim=1)


def stacked_log_probabilities(part_logits: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The parts' log-probabilities, stacked along a new first dimension."""
    return torch.stack([logits.log_softmax(dim=-1) for logits in part_logits])


def mixture_logits(part_logits: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Logits of the mean of the parts' probabilities: their softmax is that mean."""
    return torch.logsumexp(stacked_log_probabilities(part_logits), dim=0) - math.log(len(part_logits))


def product_logits(part_logits: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Logits of the normalised product of the parts' probabilities (their geometric mean): the mean of their
    log-probabilities."""
    return stacked_log_probabilities(part_logits).mean(dim=0)


# How a model whose parts are trained apart combines their logits into its prediction (`linear_combination`).
PART_COMBINATIONS = {"mixture": mixture_logits, "product": product_logits}


@dataclass
class MeliClassifierOutput(SequenceClassifierOutput):
    """`SequenceClassifierOutput` plus, in training or when asked (`output_part_logits`), the logits of each part of
    a model whose parts are trained apart (`linear_combination` `"mixture"` or `"product"`): the network's, then the
    linear part's, each with its own loss."""

    part_logits: tuple[torch.Tensor, ...] | None = None


class MeliInt8Table(nn.Module):
    """A table of float rows stored as int8 with one float32 scale per row (symmetric: the row's largest magnitude
    maps to 127), a quarter of float32's size. A lookup returns the rows as `weight[ids] * scale[ids]`; a model
    holding it predicts exactly what was measured on the stored table, since the int8 values are what is saved."""

    def __init__(self, rows: int, columns: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(rows, columns, dtype=torch.int8))
        self.register_buffer("scale", torch.ones(rows))

    @torch.no_grad()
    def quantize_(self, matrix: torch.Tensor) -> None:
        """Store `matrix` (rows x columns), each row rounded to the nearest of 255 steps of its own scale."""
        scale = matrix.abs().amax(dim=1).float() / 127.0
        scale[scale == 0] = 1.0  # an all-zero row (padding, an unseen feature) stays zero
        self.weight.copy_(torch.round(matrix.float() / scale.unsqueeze(1)).to(torch.int8))
        self.scale.copy_(scale)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight[ids].to(self.scale.dtype) * self.scale[ids].unsqueeze(-1)


class MeliDropout(nn.Dropout):
    """`nn.Dropout` with the same keep probability and scaling. On CPU it draws its mask by comparing uniform noise,
    about twice as fast as PyTorch's CPU `bernoulli_` (a fifth of an MLP step at the course's shapes); elsewhere it
    is `nn.Dropout`, whose fused GPU kernel is the faster one."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.training and 0.0 < self.p < 1.0 and input.is_cpu:
            return input * ((torch.rand_like(input) >= self.p) * (1.0 / (1.0 - self.p)))
        return super().forward(input)


class MeliMeanEncoder(nn.Module):
    """Mean of the vectors of the real tokens of each title and, with `bigram_buckets`, of its word bigrams hashed
    into that many buckets (fastText's `wordNgrams=2`): the word order that a mean of words alone cannot see."""

    def __init__(self, config: MeliMLPConfig):
        super().__init__()
        self.output_size = config.embedding_dim
        self.bigram_buckets = config.bigram_buckets
        self.bigram_embeddings = (
            nn.Embedding(config.bigram_buckets, config.embedding_dim) if config.bigram_buckets else None
        )

    def forward(self, embeddings: torch.Tensor, attention_mask: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(embeddings.dtype)
        total, count = (embeddings * mask).sum(dim=1), mask.sum(dim=1)
        if self.bigram_embeddings is not None:
            bigram_ids, bigram_mask = hashed_bigrams(input_ids, attention_mask, self.bigram_buckets)
            bigram_mask = bigram_mask.unsqueeze(-1).to(embeddings.dtype)
            total = total + (self.bigram_embeddings(bigram_ids) * bigram_mask).sum(dim=1)
            count = count + bigram_mask.sum(dim=1)
        # A title with no known word averages to zeros instead of dividing by zero.
        return total / count.clamp(min=1.0)


class MeliConvolutionEncoder(nn.Module):
    """Convolutions of several widths, each max-pooled over the windows that lie inside the title."""

    def __init__(self, config: MeliCNNConfig):
        super().__init__()
        self.convolutions = nn.ModuleList(
            nn.Conv1d(config.embedding_dim, config.num_filters, kernel_size=width) for width in config.filter_widths
        )
        self.output_size = config.num_filters * len(config.filter_widths)

    def forward(self, embeddings: torch.Tensor, attention_mask: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        widest = max(conv.kernel_size[0] for conv in self.convolutions)
        if embeddings.shape[1] < widest:
            embeddings = nn.functional.pad(embeddings, (0, 0, 0, widest - embeddings.shape[1]))
        inputs = embeddings.transpose(1, 2)
        lengths = attention_mask.sum(dim=1, keepdim=True)
        pooled = []
        for conv in self.convolutions:
            features = torch.relu(conv(inputs))
            # Window t is valid when it starts inside the title; a title shorter than the filter keeps window 0.
            positions = torch.arange(features.shape[-1], device=features.device).unsqueeze(0)
            valid = positions < (lengths - conv.kernel_size[0] + 1).clamp(min=1)
            pooled.append(features.masked_fill(~valid.unsqueeze(1), float("-inf")).amax(dim=-1))
        return torch.cat(pooled, dim=-1)


class MeliRecurrentEncoder(nn.Module):
    """An LSTM over packed sequences, pooled as `config.lstm_pooling` says: the last hidden state of each direction
    of the top layer, or the maximum of the top layer's outputs over the title's words (padding excluded)."""

    def __init__(self, config: MeliLSTMConfig):
        super().__init__()
        self.lstm = nn.LSTM(
            config.embedding_dim,
            config.lstm_hidden_size,
            num_layers=config.lstm_num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.lstm_num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.directions = 2 if config.bidirectional else 1
        self.output_size = config.lstm_hidden_size * self.directions
        self.pooling = config.lstm_pooling

    def forward(self, embeddings: torch.Tensor, attention_mask: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(dim=1).clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(embeddings, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, (hidden, _) = self.lstm(packed)
        if self.pooling == "last":
            return torch.cat(list(hidden[-self.directions :]), dim=-1)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True)
        positions = torch.arange(outputs.size(1), device=outputs.device)
        inside = positions.unsqueeze(0) < lengths.unsqueeze(1)
        return outputs.masked_fill(~inside.unsqueeze(-1), float("-inf")).amax(dim=1)


class MeliLinearNgramClassifier(nn.Module):
    """The wide part of a wide & deep model (Cheng et al. 2016): one weight per feature and category over a title's
    words and its hashed word bigrams, each real feature weighted by `1/sqrt(features)` (a unit-length count vector
    when they are distinct). Its rows are the TF-IDF model's full-rank evidence (a rare `32gb` or model number
    names its category), which the network's low-rank word vectors blur; in the real sample's ensembles that model
    added more than a second network did. Its logits are added to the network's, or (`linear_combination=
    "mixture"`, `"product"`) each part is trained on its own loss and the prediction is the mean, or the normalised
    product, of their probabilities: an ensemble of the two in one forward pass. The weights are stored divided by
    `linear_logit_scale`, so Adam, whose steps do not depend on a gradient's size, moves these logits that many
    times faster than the network's: the TF-IDF model learns at 0.1, the LSTM at 1e-3."""

    def __init__(self, config: MeliWordConfig):
        super().__init__()
        self.vocab_size = config.vocab_size
        self.buckets = config.linear_bigram_buckets
        self.scale = config.linear_logit_scale
        features = config.vocab_size + self.buckets
        self.weight = (
            MeliInt8Table(features, config.num_labels)
            if config.int8_tables
            else nn.EmbeddingBag(features, config.num_labels, mode="sum")
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ids, mask = word_and_bigram_features(input_ids, attention_mask, self.vocab_size, self.buckets)
        mask = mask.to(torch.float32)
        weights = mask * (self.scale / mask.sum(dim=1, keepdim=True).clamp(min=1.0).sqrt())
        if isinstance(self.weight, MeliInt8Table):
            return (self.weight(ids) * weights.unsqueeze(-1)).sum(dim=1)
        return self.weight(ids, per_sample_weights=weights.to(self.weight.weight.dtype))


class MeliClassificationHead(nn.Module):
    """Hidden layers (linear, ReLU, dropout) and the output layer."""

    def __init__(self, config: MeliWordConfig, input_size: int):
        super().__init__()
        layers = []
        for size in config.hidden_layers:
            layers += [nn.Linear(input_size, size), nn.ReLU(), MeliDropout(config.dropout)]
            input_size = size
        self.hidden = nn.Sequential(*layers)
        self.out_proj = nn.Linear(input_size, config.num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.hidden(features))


class MeliPreTrainedModel(PreTrainedModel):
    """Base of the baselines: word embeddings, an encoder (`encoder_class`) and the classification head."""

    config_class = MeliWordConfig
    base_model_prefix = "meli"
    main_input_name = "input_ids"
    encoder_class: type[nn.Module] = MeliMeanEncoder

    def __init__(self, config: MeliWordConfig):
        super().__init__(config)
        if config.int8_tables:
            self.embeddings = MeliInt8Table(config.vocab_size, config.embedding_dim)
        else:
            self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
            # Frozen vectors get no optimizer state; `forward` also detaches them, since loading replaces the
            # parameter.
            self.embeddings.weight.requires_grad = not config.freeze_embeddings
        self.embedding_dropout = MeliDropout(config.dropout)
        self.encoder = self.encoder_class(config)
        self.classifier = MeliClassificationHead(config, self.encoder.output_size)
        self.linear_ngrams = MeliLinearNgramClassifier(config) if config.linear_bigram_buckets else None
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        # Word vectors learnt from scratch need PyTorch's unit scale: at 0.02 a mean of a few words is too faint.
        if isinstance(module, MeliInt8Table):  # a stored table, loaded or quantized; nothing to draw
            return
        if module is getattr(self, "embeddings", None):
            init.normal_(module.weight, mean=0.0, std=1.0)
            if not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        # Bigram vectors start at zero: random ones drown the words' signal in the mean (slower, worse training).
        elif module is getattr(getattr(self, "encoder", None), "bigram_embeddings", None):
            init.zeros_(module.weight)
        # The linear part starts at zero, as the TF-IDF model: the network's logits alone.
        elif isinstance(module, nn.EmbeddingBag):
            init.zeros_(module.weight)

    def get_input_embeddings(self) -> nn.Embedding | MeliInt8Table:
        return self.embeddings

    @torch.no_grad()
    def with_int8_tables(self) -> "MeliPreTrainedModel":
        """A copy of this model for serving whose word embeddings and linear part are int8 tables
        (`config.int8_tables`); every other weight is kept as it is."""
        if self.config.int8_tables:
            raise ValueError("this model's tables are int8 already")
        config = self.config.__class__(**(self.config.to_dict() | {"int8_tables": True}))
        compact = self.__class__(config).to(self.device).eval()
        tables = {"embeddings.weight": compact.embeddings}
        if self.linear_ngrams is not None:
            tables["linear_ngrams.weight.weight"] = compact.linear_ngrams.weight
        state = self.state_dict()
        compact.load_state_dict({k: v for k, v in state.items() if k not in tables}, strict=False)
        for name, table in tables.items():
            table.quantize_(state[name])
        return compact

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings = value

    def load_word_vectors(self, matrix: torch.Tensor) -> None:
        """Copy pretrained word vectors in; called after `post_init()` so initialisation cannot overwrite them."""
        matrix = torch.as_tensor(matrix, dtype=self.embeddings.weight.dtype)
        if matrix.shape != self.embeddings.weight.shape:
            raise ValueError(
                f"word vectors of shape {tuple(matrix.shape)} do not fit the embeddings "
                f"{tuple(self.embeddings.weight.shape)} (vocab_size x embedding_dim)"
            )
        with torch.no_grad():
            self.embeddings.weight.copy_(matrix)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_part_logits: bool | None = None,
    ) -> MeliClassifierOutput:
        r"""
        output_part_logits (`bool`, *optional*):
            Return the logits of each part of a model whose parts are trained apart (`config.trains_parts_apart`).
            By default in training only: evaluation and prediction read the logits alone (the Trainer would gather
            any other output).
        """
        if self.training and self.config.int8_tables:
            raise ValueError("a model with int8 tables (scripts/compact.py) predicts; train the float32 checkpoint")
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        embeddings = self.embeddings(input_ids)
        if self.config.freeze_embeddings:
            embeddings = embeddings.detach()
        embeddings = self.embedding_dropout(embeddings)
        logits = self.classifier(self.encoder(embeddings, attention_mask, input_ids))
        part_logits = None
        if self.linear_ngrams is not None:
            linear_logits = self.linear_ngrams(input_ids, attention_mask)
            if self.config.trains_parts_apart:
                part_logits = (logits, linear_logits)
                logits = PART_COMBINATIONS[self.config.linear_combination](part_logits)
            else:
                logits = logits + linear_logits
        loss = None
        if labels is not None:
            loss = sum(nn.functional.cross_entropy(part, labels) for part in (part_logits or (logits,)))
        if not (self.training if output_part_logits is None else output_part_logits):
            part_logits = None
        return MeliClassifierOutput(loss=loss, logits=logits, part_logits=part_logits)


class MeliMLPForSequenceClassification(MeliPreTrainedModel):
    config_class = MeliMLPConfig
    encoder_class = MeliMeanEncoder


class MeliCNNForSequenceClassification(MeliPreTrainedModel):
    config_class = MeliCNNConfig
    encoder_class = MeliConvolutionEncoder


class MeliLSTMForSequenceClassification(MeliPreTrainedModel):
    config_class = MeliLSTMConfig
    encoder_class = MeliRecurrentEncoder


class MeliTfidfForSequenceClassification(PreTrainedModel):
    """Multinomial logistic regression over TF-IDF features: a title's words and hashed word bigrams, each occurrence
    weighted by the feature's inverse document frequency (so a repeated word counts twice), the vector scaled to unit
    length. The category-by-feature weight matrix is an `nn.EmbeddingBag`: a title reads only its features' rows.
    Features held by fewer than `min_document_frequency` training titles are dropped by `fit_idf`: no row, no part
    of the vector's length."""

    config_class = MeliTfidfConfig
    base_model_prefix = "meli"
    main_input_name = "input_ids"

    def __init__(self, config: MeliTfidfConfig):
        super().__init__(config)
        features = config.vocab_size + config.bigram_buckets
        rows = features if config.num_features is None else config.num_features
        self.classifier = nn.EmbeddingBag(
            rows, config.num_labels, mode="sum", device="meta" if self.weights_await_fit else None
        )
        self.bias = nn.Parameter(torch.zeros(config.num_labels))
        # Saved with the weights, since a checkpoint's weights mean nothing without the idf they were trained with,
        # and the weight row of each feature (-1: dropped).
        self.register_buffer("idf", torch.ones(features))
        self.register_buffer("feature_rows", torch.arange(features))
        self.post_init()

    @property
    def weights_await_fit(self) -> bool:
        """A model that will drop rare features gets its weight matrix from `fit_idf`: none is allocated before (the
        full matrix can be many times the kept one)."""
        return self.config.num_features is None and self.config.min_document_frequency > 1

    def _init_weights(self, module: nn.Module) -> None:
        # A linear classifier starts at zero, as scikit-learn's: all categories alike, no random feature weights.
        if module is self:
            init.zeros_(module.bias)
            init.ones_(module.idf)
            rows = torch.arange(len(module.feature_rows))
            init.copy_(module.feature_rows, rows.masked_fill(rows >= module.classifier.num_embeddings, -1))
        elif isinstance(module, nn.EmbeddingBag):
            init.zeros_(module.weight)

    def save_pretrained(self, save_directory, *args, state_dict: dict | None = None, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`, with the weight matrix stored in float16: half the checkpoint, logits
        within about 1e-3 of the float32 ones (loading casts it back to float32). Weights beyond float16's range
        stay float32."""
        state_dict = dict(self.state_dict() if state_dict is None else state_dict)
        weight = state_dict["classifier.weight"]
        if weight.dtype == torch.float32:
            low, high = weight.aminmax()  # the range without a copy of the matrix (`abs()` would make one)
            if max(-low, high) <= torch.finfo(torch.float16).max:
                state_dict["classifier.weight"] = weight.half()
        super().save_pretrained(save_directory, *args, state_dict=state_dict, **kwargs)

    def feature_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature ids of each title and the mask of the real ones."""
        return word_and_bigram_features(input_ids, attention_mask, self.config.vocab_size, self.config.bigram_buckets)

    @torch.no_grad()
    def fit_idf(self, batches: Iterable[dict[str, torch.Tensor]]) -> None:
        """Set the idf of every feature from the training titles, as scikit-learn's smoothed
        `log((1 + titles) / (1 + titles holding it)) + 1`, and drop the features held by fewer than
        `min_document_frequency` of them: the weight matrix is rebuilt, at zero, with the kept features' rows.
        Called once before training."""
        document_frequency = torch.zeros_like(self.idf, dtype=torch.float64)
        documents = 0
        for batch in batches:
            ids, mask = self.feature_ids(batch["input_ids"], batch["attention_mask"])
            # Sorting each title's ids puts repeats side by side, so a feature counts once per title.
            ids = ids.masked_fill(mask == 0, -1).sort(dim=1).values
            first = torch.ones_like(ids, dtype=torch.bool)
            first[:, 1:] = ids[:, 1:] != ids[:, :-1]
            document_frequency += torch.bincount(ids[first & (ids >= 0)], minlength=len(self.idf))
            documents += len(ids)
        self.idf.copy_(torch.log((1.0 + documents) / (1.0 + document_frequency)) + 1.0)
        if self.config.min_document_frequency > 1:
            kept = document_frequency >= self.config.min_document_frequency
            self.feature_rows.copy_((kept.cumsum(0) - 1).masked_fill(~kept, -1))
            self.config.num_features = int(kept.sum())
            self.classifier = nn.EmbeddingBag(
                self.config.num_features,
                self.config.num_labels,
                mode="sum",
                device=self.bias.device,
                dtype=self.bias.dtype,
            )
            nn.init.zeros_(self.classifier.weight)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> SequenceClassifierOutput:
        if self.classifier.weight.is_meta:
            raise ValueError("this TF-IDF model drops rare features: fit_idf must count the training titles first")
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        ids, mask = self.feature_ids(input_ids, attention_mask)
        rows = self.feature_rows[ids]
        weights = self.idf[ids] * mask * (rows >= 0)
        # The vector's squared length sums, per feature, the square of its weights summed over its repeats: each
        # occurrence's weight times the weights of all occurrences of the same feature (padding and dropped
        # features weigh nothing).
        repeats = (ids.unsqueeze(2) == ids.unsqueeze(1)).to(weights.dtype)
        squared_length = (weights * torch.bmm(repeats, weights.unsqueeze(-1)).squeeze(-1)).sum(dim=1, keepdim=True)
        # A title with no kept feature keeps all-zero weights and scores by the bias alone.
        weights = weights / squared_length.sqrt().clamp(min=1e-12)
        logits = self.classifier(rows.clamp(min=0), per_sample_weights=weights) + self.bias
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


# Saved checkpoints carry `auto_map` and this file, so they load with trust_remote_code=True without meli_hf.
for _model in (
    MeliMLPForSequenceClassification,
    MeliCNNForSequenceClassification,
    MeliLSTMForSequenceClassification,
    MeliTfidfForSequenceClassification,
):
    _model.register_for_auto_class("AutoModelForSequenceClassification")

__all__ = [
    "MeliPreTrainedModel",
    "MeliMLPForSequenceClassification",
    "MeliCNNForSequenceClassification",
    "MeliLSTMForSequenceClassification",
    "MeliTfidfForSequenceClassification",
]
