"""ONNX graphs of the word models (MLP, CNN, LSTM, each with or without its linear part, and the TF-IDF model), built
operator by operator with `onnx.helper` from a loaded model's weights.

torch's exporters trace the PyTorch code; the LSTM reads packed sequences, which they do not express, while ONNX's
own `LSTM` operator takes each title's length (`sequence_lens`). Building the graph by hand also keeps int8 tables
int8 in the file: a lookup gathers int8 rows, then casts and scales them, so the runtime cannot fold the table
back to float32. The graph reads `input_ids` and `attention_mask` (int64, batch x words) and answers
`probabilities` (float32, batch x categories): what `scripts/predict.py` ranks. `tests/inference/test_onnx.py`
checks each graph against the PyTorch model it came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data
from torch import nn

from ..models.modeling_meli import (
    BIGRAM_HASH_MULTIPLIER,
    MeliCNNForSequenceClassification,
    MeliInt8Table,
    MeliLSTMForSequenceClassification,
    MeliMLPForSequenceClassification,
    MeliPreTrainedModel,
    MeliTfidfForSequenceClassification,
)

OPSET = 17  # onnxruntime 1.14 and later
# Weights go to a file beside the graph, each at an offset that is a multiple of 64 KiB (any OS's mapping
# granularity), so that onnxruntime maps them into memory instead of parsing and copying them: a 254 MB LSTM copy's
# session starts in 0.1 s instead of 1.5 s. Tensors under 4 KiB stay in the graph.
WEIGHTS_ALIGNMENT = 1 << 16
SMALLEST_EXTERNAL_TENSOR = 1 << 12
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "probabilities"
# PyTorch stacks an LSTM's gates as input, forget, cell, output; ONNX as input, output, forget, cell.
ONNX_GATE_ORDER = (0, 3, 1, 2)


class GraphBuilder:
    """Nodes and weights of one graph, each output named once: `op` adds a node and returns its output's name."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def constant(self, value, stem: str = "const", dtype=None) -> str:
        array = np.asarray(value, dtype=dtype)
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attributes) -> str | list[str]:
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attributes))
        return names[0] if outputs == 1 else names

    def float_mask(self, mask: str) -> str:
        return self.op("Cast", mask, to=TensorProto.FLOAT)

    def table_lookup(self, table: nn.Module, ids: str, stem: str, row_weights: str | None = None) -> str:
        """Rows of an embedding table for `ids`, each times its `row_weights` (same shape as `ids`) when given; an
        int8 table stays int8 in the file and is scaled after the gather (with the row weights: one multiplication
        of the rows)."""
        if isinstance(table, MeliInt8Table):
            rows = self.op(
                "Cast",
                self.op("Gather", self.constant(_array(table.weight), f"{stem}_int8"), ids),
                to=TensorProto.FLOAT,
            )
            scale = self.op("Gather", self.constant(_array(table.scale), f"{stem}_scale"), ids)
        else:
            rows, scale = self.op("Gather", self.constant(_array(table.weight), stem), ids), None
        if row_weights is not None:
            scale = row_weights if scale is None else self.op("Mul", scale, row_weights)
        return rows if scale is None else self.op("Mul", rows, self.op("Unsqueeze", scale, self.axes(-1)))

    def axes(self, *axes: int) -> str:
        return self.constant(list(axes), "axes", np.int64)

    def linear(self, features: str, layer: nn.Linear, stem: str) -> str:
        weight = self.constant(_array(layer.weight).T, f"{stem}_weight")
        return self.op("Add", self.op("MatMul", features, weight), self.constant(_array(layer.bias), f"{stem}_bias"))

    def lengths(self, float_mask: str) -> str:
        """Real features per title (batch x 1, float), at least 1."""
        count = self.op("ReduceSum", float_mask, self.axes(1), keepdims=1)
        return self.op("Max", count, self.constant(np.float32(1.0)))

    def hashed_bigrams(self, ids: str, mask: str, buckets: int) -> tuple[str, str]:
        """`modeling_meli.hashed_bigrams`: the bucket of each consecutive word pair, and the mask of real pairs."""
        first, second = self.shifted(ids)
        first_mask, second_mask = self.shifted(mask)
        product = self.op("Mul", first, self.constant(np.int64(BIGRAM_HASH_MULTIPLIER)))
        buckets_id = self.op("Mod", self.op("Add", product, second), self.constant(np.int64(buckets)))
        return buckets_id, self.op("Mul", first_mask, second_mask)

    def shifted(self, tensor: str) -> tuple[str, str]:
        """`tensor[:, :-1]` and `tensor[:, 1:]`."""
        start, stop, end = (self.constant([v], "index", np.int64) for v in (0, -1, 1 << 62))
        axis = self.axes(1)
        one = self.constant([1], "index", np.int64)
        return self.op("Slice", tensor, start, stop, axis), self.op("Slice", tensor, one, end, axis)

    def masked_max(self, values: str, inside: str, axis: int) -> str:
        """The maximum over `axis` of `values` where `inside` (bool, broadcast) holds."""
        floor = self.constant(np.float32(-np.inf))
        return self.op("ReduceMax", self.op("Where", inside, values, floor), axes=[axis], keepdims=0)

    def positions_inside(self, length: str, like: str, axis: int) -> str:
        """Bool (batch x positions) of the positions along `axis` of `like` below each title's `length` (batch x 1,
        int64)."""
        size = self.op("Gather", self.op("Shape", like), self.constant(np.int64(axis)))
        positions = self.op("Range", self.constant(np.int64(0)), size, self.constant(np.int64(1)))
        return self.op("Less", self.op("Unsqueeze", positions, self.axes(0)), length)


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _mean_encoder(graph: GraphBuilder, model: MeliMLPForSequenceClassification, embeddings: str, ids: str, mask: str):
    mask_f = graph.op("Unsqueeze", graph.float_mask(mask), graph.axes(-1))
    total = graph.op("ReduceSum", graph.op("Mul", embeddings, mask_f), graph.axes(1), keepdims=0)
    count = graph.op("ReduceSum", mask_f, graph.axes(1), keepdims=0)
    encoder = model.encoder
    if encoder.bigram_embeddings is not None:
        bigram_ids, bigram_mask = graph.hashed_bigrams(ids, mask, encoder.bigram_buckets)
        bigram_mask = graph.op("Unsqueeze", graph.float_mask(bigram_mask), graph.axes(-1))
        bigrams = graph.table_lookup(encoder.bigram_embeddings, bigram_ids, "bigram_embeddings")
        total = graph.op(
            "Add", total, graph.op("ReduceSum", graph.op("Mul", bigrams, bigram_mask), graph.axes(1), keepdims=0)
        )
        count = graph.op("Add", count, graph.op("ReduceSum", bigram_mask, graph.axes(1), keepdims=0))
    return graph.op("Div", total, graph.op("Max", count, graph.constant(np.float32(1.0))))


def _convolution_encoder(graph: GraphBuilder, model: MeliCNNForSequenceClassification, embeddings: str, ids, mask):
    convolutions = model.encoder.convolutions
    widest = max(conv.kernel_size[0] for conv in convolutions)
    # widest - 1 zero positions after every title: PyTorch pads a batch narrower than the widest filter the same
    # way, and the windows that start past a title are masked below anyway.
    padded = graph.op("Pad", embeddings, graph.constant([0, 0, 0, 0, widest - 1, 0], "pads", np.int64))
    inputs = graph.op("Transpose", padded, perm=[0, 2, 1])
    lengths = graph.op("Cast", graph.op("ReduceSum", mask, graph.axes(1), keepdims=1), to=TensorProto.INT64)
    pooled = []
    for number, conv in enumerate(convolutions):
        width = conv.kernel_size[0]
        features = graph.op(
            "Relu",
            graph.op(
                "Conv",
                inputs,
                graph.constant(_array(conv.weight), f"conv{number}_weight"),
                graph.constant(_array(conv.bias), f"conv{number}_bias"),
                kernel_shape=[width],
            ),
        )
        windows = graph.op(
            "Max", graph.op("Sub", lengths, graph.constant(np.int64(width - 1))), graph.constant(np.int64(1))
        )
        inside = graph.op("Unsqueeze", graph.positions_inside(windows, features, axis=2), graph.axes(1))
        pooled.append(graph.masked_max(features, inside, axis=2))
    return graph.op("Concat", *pooled, axis=-1)


def _onnx_lstm_weights(lstm: nn.LSTM, kind: str, layer: int, suffixes: list[str]) -> np.ndarray:
    """One layer's `kind` weights (`weight_ih`, `bias_hh`, ...) of each direction, stacked as ONNX wants them
    (directions first) with the gates in ONNX's order."""
    blocks = [np.split(_array(getattr(lstm, f"{kind}_l{layer}{suffix}")), 4) for suffix in suffixes]
    return np.stack([np.concatenate([gates[i] for i in ONNX_GATE_ORDER]) for gates in blocks])


def _recurrent_encoder(graph: GraphBuilder, model: MeliLSTMForSequenceClassification, embeddings: str, ids, mask):
    lstm, config = model.encoder.lstm, model.config
    directions = 2 if config.bidirectional else 1
    hidden = config.lstm_hidden_size
    lengths = graph.op("Max", graph.op("ReduceSum", mask, graph.axes(1), keepdims=0), graph.constant(np.int64(1)))
    sequence_lens = graph.op("Cast", lengths, to=TensorProto.INT32)
    inputs = graph.op("Transpose", embeddings, perm=[1, 0, 2])  # words x batch x features
    suffixes = ["", "_reverse"][:directions]
    for layer in range(config.lstm_num_layers):
        weights = [
            graph.constant(_onnx_lstm_weights(lstm, kind, layer, suffixes), f"lstm{layer}_{kind}")
            for kind in ("weight_ih", "weight_hh")
        ]
        bias = graph.constant(
            np.concatenate(
                [_onnx_lstm_weights(lstm, kind, layer, suffixes) for kind in ("bias_ih", "bias_hh")], axis=1
            ),
            f"lstm{layer}_bias",
        )
        outputs, last_hidden, _ = graph.op(
            "LSTM",
            inputs,
            *weights,
            bias,
            sequence_lens,
            outputs=3,
            hidden_size=hidden,
            direction="bidirectional" if directions == 2 else "forward",
        )
        # words x directions x batch x hidden -> words x batch x (directions * hidden), PyTorch's order
        inputs = graph.op(
            "Reshape",
            graph.op("Transpose", outputs, perm=[0, 2, 1, 3]),
            graph.constant([0, 0, directions * hidden], "shape", np.int64),
        )
    if config.lstm_pooling == "last":
        return graph.op(
            "Reshape",
            graph.op("Transpose", last_hidden, perm=[1, 0, 2]),
            graph.constant([0, directions * hidden], "shape", np.int64),
        )
    inside = graph.positions_inside(graph.op("Unsqueeze", lengths, graph.axes(1)), inputs, axis=0)  # batch x words
    inside = graph.op("Unsqueeze", graph.op("Transpose", inside, perm=[1, 0]), graph.axes(-1))  # words x batch x 1
    return graph.masked_max(inputs, inside, axis=0)


ENCODERS = {
    MeliMLPForSequenceClassification: _mean_encoder,
    MeliCNNForSequenceClassification: _convolution_encoder,
    MeliLSTMForSequenceClassification: _recurrent_encoder,
}


def _linear_part_logits(graph: GraphBuilder, model: MeliPreTrainedModel, ids: str, mask: str) -> str:
    """`MeliLinearNgramClassifier`: the weight rows of the title's words and hashed bigrams, each real one weighted
    by `scale / sqrt(features)`, summed."""
    part = model.linear_ngrams
    features, feature_mask = ids, mask
    if part.buckets:
        bigram_ids, bigram_mask = graph.hashed_bigrams(ids, mask, part.buckets)
        bigram_ids = graph.op("Add", bigram_ids, graph.constant(np.int64(part.vocab_size)))
        features = graph.op("Concat", ids, bigram_ids, axis=1)
        feature_mask = graph.op("Concat", mask, bigram_mask, axis=1)
    feature_mask = graph.float_mask(feature_mask)
    norm = graph.op("Sqrt", graph.lengths(feature_mask))
    weights = graph.op("Div", graph.op("Mul", feature_mask, graph.constant(np.float32(part.scale))), norm)
    rows = graph.table_lookup(part.weight, features, "linear_weight", row_weights=weights)
    return graph.op("ReduceSum", rows, graph.axes(1), keepdims=0)


def _word_model_probabilities(graph: GraphBuilder, model: MeliPreTrainedModel, ids: str, mask: str) -> str:
    """`MeliPreTrainedModel.forward` in eval mode (dropout off), then the softmax."""
    embeddings = graph.table_lookup(model.embeddings, ids, "embeddings")
    features = ENCODERS[type(model)](graph, model, embeddings, ids, mask)
    for number, layer in enumerate(module for module in model.classifier.hidden if isinstance(module, nn.Linear)):
        features = graph.op("Relu", graph.linear(features, layer, f"hidden{number}"))
    logits = graph.linear(features, model.classifier.out_proj, "out_proj")
    if model.linear_ngrams is None:
        return graph.op("Softmax", logits, axis=-1)
    linear_logits = _linear_part_logits(graph, model, ids, mask)
    combination = model.config.linear_combination if model.config.trains_parts_apart else "sum"
    if combination == "sum":
        return graph.op("Softmax", graph.op("Add", logits, linear_logits), axis=-1)
    if combination == "mixture":  # the mean of the parts' probabilities
        both = graph.op("Add", graph.op("Softmax", logits, axis=-1), graph.op("Softmax", linear_logits, axis=-1))
        return graph.op("Mul", both, graph.constant(np.float32(0.5)))
    # product: the softmax of the mean of the parts' log-probabilities
    both = graph.op("Add", graph.op("LogSoftmax", logits, axis=-1), graph.op("LogSoftmax", linear_logits, axis=-1))
    return graph.op("Softmax", graph.op("Mul", both, graph.constant(np.float32(0.5))), axis=-1)


def _tfidf_probabilities(graph: GraphBuilder, model: MeliTfidfForSequenceClassification, ids: str, mask: str) -> str:
    """`MeliTfidfForSequenceClassification.forward`: idf-weighted features scaled to unit length, through the kept
    features' weight rows, then the softmax."""
    config = model.config
    weight = _array(model.classifier.weight)
    if np.array_equal(weight.astype(np.float16).astype(np.float32), weight):  # saved in float16: half the file
        weight = weight.astype(np.float16)
    features, feature_mask = ids, mask
    if config.bigram_buckets:
        bigram_ids, bigram_mask = graph.hashed_bigrams(ids, mask, config.bigram_buckets)
        features = graph.op(
            "Concat", ids, graph.op("Add", bigram_ids, graph.constant(np.int64(config.vocab_size))), axis=1
        )
        feature_mask = graph.op("Concat", mask, bigram_mask, axis=1)
    rows = graph.op("Gather", graph.constant(_array(model.feature_rows), "feature_rows"), features)
    kept = graph.op("Cast", graph.op("GreaterOrEqual", rows, graph.constant(np.int64(0))), to=TensorProto.FLOAT)
    idf = graph.op("Gather", graph.constant(_array(model.idf).astype(np.float32), "idf"), features)
    weights = graph.op("Mul", graph.op("Mul", idf, graph.float_mask(feature_mask)), kept)
    repeats = graph.op(
        "Cast",
        graph.op(
            "Equal", graph.op("Unsqueeze", features, graph.axes(2)), graph.op("Unsqueeze", features, graph.axes(1))
        ),
        to=TensorProto.FLOAT,
    )
    summed = graph.op(
        "Squeeze", graph.op("MatMul", repeats, graph.op("Unsqueeze", weights, graph.axes(-1))), graph.axes(-1)
    )
    squared_length = graph.op("ReduceSum", graph.op("Mul", weights, summed), graph.axes(1), keepdims=1)
    length = graph.op("Max", graph.op("Sqrt", squared_length), graph.constant(np.float32(1e-12)))
    weights = graph.op("Div", weights, length)
    gathered = graph.op(
        "Gather", graph.constant(weight, "classifier_weight"), graph.op("Max", rows, graph.constant(np.int64(0)))
    )
    if weight.dtype == np.float16:
        gathered = graph.op("Cast", gathered, to=TensorProto.FLOAT)
    logits = graph.op(
        "ReduceSum",
        graph.op("Mul", gathered, graph.op("Unsqueeze", weights, graph.axes(-1))),
        graph.axes(1),
        keepdims=0,
    )
    logits = graph.op("Add", logits, graph.constant(_array(model.bias), "bias"))
    return graph.op("Softmax", logits, axis=-1)


def onnx_model(model: MeliPreTrainedModel | MeliTfidfForSequenceClassification) -> onnx.ModelProto:
    """The ONNX graph of a word model in eval mode: `input_ids`, `attention_mask` in, `probabilities` out."""
    graph = GraphBuilder()
    ids, mask = INPUT_NAMES
    if isinstance(model, MeliTfidfForSequenceClassification):
        probabilities = _tfidf_probabilities(graph, model, ids, mask)
    elif type(model) in ENCODERS:
        probabilities = _word_model_probabilities(graph, model, ids, mask)
    else:
        raise TypeError(f"no ONNX graph for a {type(model).__name__}")
    graph.nodes.append(helper.make_node("Identity", [probabilities], [OUTPUT_NAME]))
    batch_words = ["batch", "words"]
    proto = helper.make_graph(
        graph.nodes,
        model.config.model_type,
        [helper.make_tensor_value_info(name, TensorProto.INT64, batch_words) for name in INPUT_NAMES],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", model.config.num_labels])],
        initializer=graph.initializers,
    )
    exported = helper.make_model(proto, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="meli-hf")
    exported.ir_version = 8  # what onnxruntime 1.14 and later read
    onnx.checker.check_model(exported, full_check=True)
    return exported


def save_with_mapped_weights(model: onnx.ModelProto, path: Path) -> None:
    """Write `model` to `path` and its weights to `path` + `.data`, each aligned to `WEIGHTS_ALIGNMENT` (onnxruntime
    maps aligned external weights instead of reading them)."""
    data = path.with_name(path.name + ".data")
    with data.open("wb") as stream:
        for tensor in model.graph.initializer:
            if len(tensor.raw_data) < SMALLEST_EXTERNAL_TENSOR:
                continue
            stream.write(b"\0" * (-stream.tell() % WEIGHTS_ALIGNMENT))
            offset = stream.tell()
            stream.write(tensor.raw_data)
            set_external_data(tensor, data.name, offset, len(tensor.raw_data))
            tensor.ClearField("raw_data")
            tensor.data_location = TensorProto.EXTERNAL
    onnx.save(model, path)
