import math
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForSequenceClassification

import meli_hf
from meli_hf import (
    MeliCNNConfig,
    MeliCNNForSequenceClassification,
    MeliLSTMConfig,
    MeliLSTMForSequenceClassification,
    MeliMLPConfig,
    MeliMLPForSequenceClassification,
    MeliTfidfConfig,
    MeliTfidfForSequenceClassification,
)
from meli_hf.models.modeling_meli import BIGRAM_HASH_MULTIPLIER, MeliDropout

from ..conftest import WITHOUT_MELI_HF

ARCHITECTURES = [
    (MeliMLPConfig, MeliMLPForSequenceClassification),
    (MeliCNNConfig, MeliCNNForSequenceClassification),
    (MeliLSTMConfig, MeliLSTMForSequenceClassification),
]
LABELS = {i: f"CATEGORY_{i}" for i in range(5)}
LABELS_TO_IDS = {v: k for k, v in LABELS.items()}


def _model(config_class, model_class, **kwargs):
    torch.manual_seed(0)
    config = config_class(
        vocab_size=40,
        embedding_dim=8,
        hidden_layers=[16],
        id2label=LABELS,
        label2id=LABELS_TO_IDS,
        **kwargs,
    )
    return model_class(config)


INPUT_IDS = torch.tensor([[2, 3, 4, 5, 0, 0], [6, 0, 0, 0, 0, 0], [7, 8, 0, 0, 0, 0]])


@pytest.mark.parametrize("config_class, model_class", ARCHITECTURES)
def test_forward_returns_logits_and_loss(config_class, model_class):
    model = _model(config_class, model_class)
    output = model(input_ids=INPUT_IDS, attention_mask=(INPUT_IDS != 0).long(), labels=torch.tensor([0, 1, 4]))
    assert output.logits.shape == (3, 5)
    expected = torch.nn.functional.cross_entropy(output.logits, torch.tensor([0, 1, 4]))
    assert torch.isclose(output.loss, expected)
    assert model(input_ids=INPUT_IDS).loss is None


@pytest.mark.parametrize("config_class, model_class", ARCHITECTURES)
def test_padding_does_not_change_predictions(config_class, model_class):
    model = _model(config_class, model_class).eval()
    with torch.no_grad():
        short = model(input_ids=INPUT_IDS).logits
        padded = model(input_ids=torch.nn.functional.pad(INPUT_IDS, (0, 10))).logits
        alone = model(input_ids=INPUT_IDS[1:2, :1]).logits  # a one-word title, no padding at all
    torch.testing.assert_close(short, padded)
    torch.testing.assert_close(short[1:2], alone)


def test_mlp_averages_real_tokens_only():
    model = _model(MeliMLPConfig, MeliMLPForSequenceClassification).eval()
    embeddings = model.embeddings(INPUT_IDS)
    pooled = model.encoder(embeddings, (INPUT_IDS != 0).long(), INPUT_IDS)
    torch.testing.assert_close(pooled[0], model.embeddings.weight[2:6].mean(dim=0))


def test_mlp_bigrams_average_with_the_words_and_see_word_order():
    model = _model(MeliMLPConfig, MeliMLPForSequenceClassification, bigram_buckets=7).eval()
    torch.nn.init.normal_(model.encoder.bigram_embeddings.weight)  # as after training: they start at zero
    ids = torch.tensor([[2, 3, 4, 0]])
    bigram_rows = (ids[0, :2] * BIGRAM_HASH_MULTIPLIER + ids[0, 1:3]) % 7  # (2, 3) and (3, 4); none with padding
    expected = torch.cat([model.embeddings.weight[2:5], model.encoder.bigram_embeddings.weight[bigram_rows]])
    pooled = model.encoder(model.embeddings(ids), (ids != 0).long(), ids)
    torch.testing.assert_close(pooled[0], expected.mean(dim=0))
    reversed_ids = torch.tensor([[4, 3, 2, 0]])
    assert not torch.allclose(model(input_ids=ids).logits, model(input_ids=reversed_ids).logits)
    words_only = _model(MeliMLPConfig, MeliMLPForSequenceClassification).eval()
    torch.testing.assert_close(words_only(input_ids=ids).logits, words_only(input_ids=reversed_ids).logits)


def test_mlp_bigrams_start_at_zero_learn_and_survive_save_load(tmp_path):
    model = _model(MeliMLPConfig, MeliMLPForSequenceClassification, bigram_buckets=500)
    assert not model.encoder.bigram_embeddings.weight.any()
    assert 0.7 < model.embeddings.weight[1:].std().item() < 1.3
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model(input_ids=INPUT_IDS, labels=torch.tensor([0, 1, 2])).loss.backward()
    optimizer.step()
    assert model.encoder.bigram_embeddings.weight.any()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.bigram_buckets == 500
    torch.testing.assert_close(loaded.encoder.bigram_embeddings.weight, model.encoder.bigram_embeddings.weight)
    torch.testing.assert_close(loaded(input_ids=INPUT_IDS).logits, model.eval()(input_ids=INPUT_IDS).logits)
    padded = torch.nn.functional.pad(INPUT_IDS, (0, 10))
    torch.testing.assert_close(loaded(input_ids=padded).logits, loaded(input_ids=INPUT_IDS).logits)


def test_lstm_max_pooling_takes_the_maximum_over_real_words_only(tmp_path):
    model = _model(MeliLSTMConfig, MeliLSTMForSequenceClassification, lstm_pooling="max").eval()
    with torch.no_grad():
        pooled = model.encoder(model.embeddings(INPUT_IDS), (INPUT_IDS != 0).long(), INPUT_IDS)
        for row, length in enumerate((4, 1, 2)):  # each title alone, unpadded, through the bare LSTM
            outputs, _ = model.encoder.lstm(model.embeddings(INPUT_IDS[row : row + 1, :length]))
            torch.testing.assert_close(pooled[row], outputs[0].amax(dim=0))
        last = _model(MeliLSTMConfig, MeliLSTMForSequenceClassification).eval()
        assert not torch.allclose(model(input_ids=INPUT_IDS).logits, last(input_ids=INPUT_IDS).logits)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.lstm_pooling == "max"
    torch.testing.assert_close(loaded(input_ids=INPUT_IDS).logits, model(input_ids=INPUT_IDS).logits)
    with pytest.raises(Exception, match="lstm_pooling"):
        MeliLSTMConfig(lstm_pooling="mean")


@pytest.mark.parametrize("config_class, model_class", ARCHITECTURES)
def test_linear_ngrams_add_per_feature_logits_start_at_zero_and_survive_save_load(config_class, model_class, tmp_path):
    network = _model(config_class, model_class).eval()
    model = _model(config_class, model_class, linear_bigram_buckets=7, linear_logit_scale=4.0).eval()
    table = model.linear_ngrams.weight.weight
    assert table.shape == (40 + 7, 5) and not table.any()
    # At zero the wide & deep model is its network: the network's weights give its logits.
    assert model.load_state_dict(network.state_dict(), strict=False).missing_keys == ["linear_ngrams.weight.weight"]
    torch.testing.assert_close(model(input_ids=INPUT_IDS).logits, network(input_ids=INPUT_IDS).logits)
    torch.nn.init.normal_(table)  # as after training
    ids = torch.tensor([[2, 3, 4, 0]])
    bigram_rows = 40 + (ids[0, :2] * BIGRAM_HASH_MULTIPLIER + ids[0, 1:3]) % 7  # (2, 3) and (3, 4), none with padding
    features = torch.cat([ids[0, :3], bigram_rows])
    expected = network(input_ids=ids).logits[0] + 4.0 * table[features].sum(dim=0) / math.sqrt(5)
    torch.testing.assert_close(model(input_ids=ids).logits[0], expected)
    padded = torch.nn.functional.pad(INPUT_IDS, (0, 10))
    torch.testing.assert_close(model(input_ids=padded).logits, model(input_ids=INPUT_IDS).logits)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert (loaded.config.linear_bigram_buckets, loaded.config.linear_logit_scale) == (7, 4.0)
    torch.testing.assert_close(loaded.linear_ngrams.weight.weight, table)
    torch.testing.assert_close(loaded(input_ids=INPUT_IDS).logits, model(input_ids=INPUT_IDS).logits)


def _mean_of_probabilities(network: torch.Tensor, linear: torch.Tensor) -> torch.Tensor:
    return (network.softmax(dim=-1) + linear.softmax(dim=-1)) / 2


def _normalised_product(network: torch.Tensor, linear: torch.Tensor) -> torch.Tensor:
    product = (network.softmax(dim=-1) * linear.softmax(dim=-1)).sqrt()
    return product / product.sum(dim=-1, keepdim=True)


@pytest.mark.parametrize(
    ("combination", "prediction"), [("mixture", _mean_of_probabilities), ("product", _normalised_product)]
)
def test_parts_trained_apart_predict_their_combination_and_train_each_on_its_own_loss(
    combination, prediction, tmp_path
):
    model = _model(MeliLSTMConfig, MeliLSTMForSequenceClassification, linear_bigram_buckets=7)
    model.config.linear_combination = combination
    torch.nn.init.normal_(model.linear_ngrams.weight.weight)
    labels = torch.tensor([0, 1, 4])
    output = model.eval()(input_ids=INPUT_IDS, labels=labels)
    network = model.classifier(model.encoder(model.embeddings(INPUT_IDS), (INPUT_IDS != 0).long(), INPUT_IDS))
    linear = model.linear_ngrams(INPUT_IDS, (INPUT_IDS != 0).long())
    torch.testing.assert_close(output.logits.softmax(dim=-1), prediction(network, linear))
    cross_entropy = torch.nn.functional.cross_entropy
    torch.testing.assert_close(output.loss, cross_entropy(network, labels) + cross_entropy(linear, labels))
    assert output.part_logits is None  # evaluation gathers the logits alone
    asked = model(input_ids=INPUT_IDS, output_part_logits=True).part_logits
    torch.testing.assert_close(asked, (network, linear))
    parts = model.train()(input_ids=INPUT_IDS).part_logits
    assert len(parts) == 2 and torch.equal(parts[1], linear)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.linear_combination == combination
    torch.testing.assert_close(loaded(input_ids=INPUT_IDS).logits, output.logits)


def _tfidf(bigram_buckets: int = 7) -> MeliTfidfForSequenceClassification:
    """A TF-IDF model that keeps every feature."""
    torch.manual_seed(0)
    config = MeliTfidfConfig(
        vocab_size=40, bigram_buckets=bigram_buckets, min_document_frequency=1, id2label=LABELS, label2id=LABELS_TO_IDS
    )
    return MeliTfidfForSequenceClassification(config)


def _bucket(first: int, second: int, buckets: int = 7, vocab_size: int = 40) -> int:
    return vocab_size + (first * BIGRAM_HASH_MULTIPLIER + second) % buckets


def test_tfidf_idf_counts_each_feature_once_per_title():
    model = _tfidf()
    first = torch.tensor([[2, 3, 2, 0]])  # word 2 twice in one title
    second = torch.tensor([[3, 0, 0, 0], [4, 0, 0, 0]])
    model.fit_idf({"input_ids": ids, "attention_mask": (ids != 0).long()} for ids in (first, second))
    # scikit-learn's smoothed idf over 3 titles: log((1 + 3) / (1 + titles holding the feature)) + 1
    expected = {2: 1, 3: 2, 4: 1, 5: 0, _bucket(2, 3): 1, _bucket(2, 0): 0}
    for feature, titles in expected.items():
        assert model.idf[feature].item() == pytest.approx(math.log(4 / (1 + titles)) + 1)


def test_tfidf_logits_are_linear_in_the_unit_length_tfidf_vector():
    model = _tfidf().eval()
    assert not model.classifier.weight.any() and not model.bias.any()  # starts at zero, every category alike
    torch.nn.init.normal_(model.classifier.weight)
    torch.nn.init.normal_(model.bias)
    model.idf.uniform_(1.0, 3.0)
    ids = torch.tensor([[2, 3, 2, 0, 0], [6, 0, 0, 0, 0]])
    tfidf = torch.zeros(2, 47)
    for feature in (2, 3, 2, _bucket(2, 3), _bucket(3, 2)):
        tfidf[0, feature] += model.idf[feature]
    tfidf[1, 6] = model.idf[6]
    tfidf = tfidf / tfidf.norm(dim=1, keepdim=True)
    expected = tfidf @ model.classifier.weight + model.bias
    torch.testing.assert_close(model(input_ids=ids).logits, expected)
    # Padding is no feature, and without bigram buckets the words alone are.
    torch.testing.assert_close(model(input_ids=ids[:, :3]).logits, expected)
    words = _tfidf(bigram_buckets=0).eval()
    words.classifier.weight.data = model.classifier.weight.data[:40]
    words.bias.data, words.idf.data = model.bias.data, model.idf.data[:40]
    tfidf = torch.zeros(2, 40)
    tfidf[0, 2], tfidf[0, 3], tfidf[1, 6] = 2 * words.idf[2], words.idf[3], 1.0
    expected = (tfidf / tfidf.norm(dim=1, keepdim=True)) @ words.classifier.weight + words.bias
    torch.testing.assert_close(words(input_ids=ids).logits, expected)


def test_tfidf_weights_and_idf_survive_save_and_load(tmp_path):
    model = _tfidf(bigram_buckets=500)
    model.fit_idf([{"input_ids": INPUT_IDS, "attention_mask": (INPUT_IDS != 0).long()}])
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model(input_ids=INPUT_IDS, labels=torch.tensor([0, 1, 2])).loss.backward()
    optimizer.step()
    assert model.classifier.weight.any() and not model.idf.eq(1.0).all()
    model.save_pretrained(tmp_path)
    assert load_file(tmp_path / "model.safetensors")["classifier.weight"].dtype == torch.float16  # half the size
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MeliTfidfForSequenceClassification) and loaded.config.bigram_buckets == 500
    torch.testing.assert_close(loaded.idf, model.idf)
    assert loaded.classifier.weight.dtype == torch.float32
    torch.testing.assert_close(loaded.classifier.weight, model.classifier.weight.half().float())
    torch.testing.assert_close(
        loaded(input_ids=INPUT_IDS).logits, model.eval()(input_ids=INPUT_IDS).logits, atol=1e-3, rtol=1e-3
    )
    # A weight float16 cannot hold keeps the matrix in float32.
    with torch.no_grad():
        model.classifier.weight[0, 0] = 1e5
    model.save_pretrained(tmp_path / "large")
    assert load_file(tmp_path / "large" / "model.safetensors")["classifier.weight"].dtype == torch.float32
    large = AutoModelForSequenceClassification.from_pretrained(tmp_path / "large")
    torch.testing.assert_close(large.classifier.weight, model.classifier.weight)


def test_tfidf_drops_features_held_by_too_few_titles_from_weights_and_vector(tmp_path):
    config = MeliTfidfConfig(
        vocab_size=40, bigram_buckets=500, min_document_frequency=2, id2label=LABELS, label2id=LABELS_TO_IDS
    )
    model = MeliTfidfForSequenceClassification(config)
    assert model.classifier.weight.is_meta  # no weights before the fit decides which features stay
    with pytest.raises(ValueError, match="fit_idf must count the training titles first"):
        model(input_ids=INPUT_IDS)
    titles = [[2, 3, 2], [3, 5], [3, 5, 6], [7, 8]]
    ids = torch.tensor([title + [0] * (3 - len(title)) for title in titles])
    model.fit_idf([{"input_ids": ids, "attention_mask": (ids != 0).long()}])
    held = [{*title, *(_bucket(a, b, 500) for a, b in zip(title, title[1:]))} for title in titles]
    kept = sorted(f for f in set().union(*held) if sum(f in features for features in held) >= 2)
    assert kept == [3, 5, _bucket(3, 5, 500)]
    assert model.config.num_features == 3 and model.classifier.weight.shape == (3, 5)
    assert not model.classifier.weight.any()
    assert model.feature_rows[kept].tolist() == [0, 1, 2] and (model.feature_rows >= 0).sum() == 3
    # A dropped feature is no part of the vector or its length; a title of dropped features scores by the bias.
    torch.nn.init.normal_(model.classifier.weight)
    torch.nn.init.normal_(model.bias)
    model.eval()
    tfidf = torch.zeros(2, 3)
    tfidf[0] = torch.stack([model.idf[3], model.idf[5], model.idf[_bucket(3, 5, 500)]])
    expected = (tfidf[:1] / tfidf[:1].norm()) @ model.classifier.weight + model.bias
    logits = model(input_ids=torch.tensor([[3, 5, 6], [7, 6, 0]])).logits
    torch.testing.assert_close(logits[:1], expected)
    torch.testing.assert_close(logits[1], model.bias.detach())
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.num_features == 3 and loaded.classifier.weight.shape == (3, 5)
    torch.testing.assert_close(loaded.feature_rows, model.feature_rows)
    torch.testing.assert_close(
        loaded(input_ids=torch.tensor([[3, 5, 6], [7, 6, 0]])).logits, logits, atol=1e-3, rtol=1e-3
    )


@pytest.mark.parametrize("config_class, model_class", ARCHITECTURES)
def test_dropout_is_off_in_eval_mode(config_class, model_class):
    model = _model(config_class, model_class, dropout=0.5)
    model.train()
    assert not torch.equal(model(input_ids=INPUT_IDS).logits, model(input_ids=INPUT_IDS).logits)
    model.eval()
    torch.testing.assert_close(model(input_ids=INPUT_IDS).logits, model(input_ids=INPUT_IDS).logits)


def test_cpu_dropout_drops_and_rescales_as_torch_does():
    torch.manual_seed(0)
    inputs = torch.full((400, 1000), 2.0, requires_grad=True)
    dropout = MeliDropout(0.3)
    outputs = dropout(inputs)
    kept = outputs != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    torch.testing.assert_close(outputs[kept], torch.full_like(outputs[kept], 2.0 / 0.7))
    outputs.sum().backward()
    torch.testing.assert_close(inputs.grad, kept.float() / 0.7)
    assert torch.equal(dropout.eval()(inputs), inputs)
    assert torch.equal(MeliDropout(1.0).train()(inputs), torch.zeros_like(inputs))


@pytest.mark.parametrize("config_class, model_class", ARCHITECTURES)
def test_word_vectors_survive_init_and_save_load(config_class, model_class, tmp_path):
    model = _model(config_class, model_class, freeze_embeddings=True)
    vectors = torch.randn(40, 8)
    vectors[0] = 0
    model.load_word_vectors(vectors)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(loaded) is model_class
    torch.testing.assert_close(loaded.embeddings.weight, vectors)
    torch.testing.assert_close(loaded.eval()(input_ids=INPUT_IDS).logits, model.eval()(input_ids=INPUT_IDS).logits)
    loaded.train()(input_ids=INPUT_IDS, labels=torch.tensor([0, 1, 2])).loss.backward()
    assert loaded.embeddings.weight.grad is None or not loaded.embeddings.weight.grad.any()  # frozen after reload
    assert loaded.classifier.out_proj.weight.grad.abs().sum() > 0
    assert loaded.config.id2label == LABELS


def test_new_model_has_zero_padding_row_and_unit_scale_words():
    model = _model(MeliMLPConfig, MeliMLPForSequenceClassification)
    assert torch.count_nonzero(model.embeddings.weight[0]) == 0
    assert 0.7 < model.embeddings.weight[1:].std().item() < 1.3


def test_word_vectors_of_the_wrong_shape_are_rejected():
    model = _model(MeliMLPConfig, MeliMLPForSequenceClassification)
    with pytest.raises(ValueError, match=r"do not fit the embeddings \(40, 8\)"):
        model.load_word_vectors(torch.zeros(41, 8))


def test_auto_classes_know_the_model_types():
    for config_class, model_class in ARCHITECTURES:
        config = AutoConfig.for_model(config_class.model_type, vocab_size=10, embedding_dim=4, num_labels=3)
        assert type(config) is config_class
        assert type(AutoModelForSequenceClassification.from_config(config)) is model_class


LOAD_WITHOUT_MELI_HF = """
import torch
from transformers import AutoModelForSequenceClassification
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
assert "meli_hf" not in sys.modules
ids = torch.tensor([[2, 3, 4, 5, 0, 0], [6, 0, 0, 0, 0, 0], [7, 8, 0, 0, 0, 0]])
print(type(model).__name__, model(input_ids=ids).logits.sum().item())
"""


@pytest.mark.parametrize("config_class, model_class", ARCHITECTURES)
def test_checkpoint_loads_with_remote_code_without_meli_hf(config_class, model_class, tmp_path):
    model = _model(config_class, model_class).eval()
    model.save_pretrained(tmp_path)
    assert {"configuration_meli.py", "modeling_meli.py"} <= {p.name for p in tmp_path.iterdir()}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_MELI_HF + LOAD_WITHOUT_MELI_HF, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_MODULES_CACHE": str(tmp_path / "modules")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    name, logits_sum = result.stdout.split()[-2:]
    assert name == model_class.__name__
    assert float(logits_sum) == pytest.approx(model(input_ids=INPUT_IDS).logits.sum().item(), abs=1e-5)


def test_package_exports_what_users_need():
    assert {"load_meli", "MeliMLPForSequenceClassification", "train_word_tokenizer"} <= set(meli_hf.__all__)
