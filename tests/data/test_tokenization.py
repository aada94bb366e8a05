import csv
import gzip
import json

import pytest
from transformers import AutoTokenizer

from meli_hf.data.loading import read_token_to_index
from meli_hf.data.tokenization import course_tokenize, train_word_tokenizer, word_tokenizer_from_vocabulary

from ..conftest import REAL_DATA, requires_real_data


def _records(path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_vocabulary_ids_equal_the_course_file(sample_dir):
    vocabulary = read_token_to_index(sample_dir / "spanish_token_to_index.json.gz")
    tokenizer = word_tokenizer_from_vocabulary(vocabulary)
    assert tokenizer.get_vocab() == vocabulary
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id) == (0, 1)


def test_tokens_of_tokenized_title_map_to_data(sample_dir):
    tokenizer = word_tokenizer_from_vocabulary(read_token_to_index(sample_dir / "spanish_token_to_index.json.gz"))
    for record in _records(sample_dir / "spanish.validation.jsonl.gz"):
        assert tokenizer.convert_tokens_to_ids(record["tokenized_title"]) == record["data"]


def test_title_normalisation_matches_course_preprocessing(sample_dir):
    tokenizer = word_tokenizer_from_vocabulary(read_token_to_index(sample_dir / "spanish_token_to_index.json.gz"))
    records = _records(sample_dir / "spanish.train.jsonl.gz")
    pre_tokenize = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str
    normalize = tokenizer.backend_tokenizer.normalizer.normalize_str
    agree = sum([w for w, _ in pre_tokenize(normalize(r["title"]))] == r["tokenized_title"] for r in records)
    print(f"title -> tokens equals tokenized_title on {agree}/{len(records)} titles")
    assert agree == len(records)
    assert tokenizer(records[0]["title"])["input_ids"] == records[0]["data"]


@pytest.mark.parametrize(
    "title, tokens",
    [
        ("Zapatillas Nike Air Talle 42, para Hombre!", ["zapatillas", "nike", "air", "talle", "hombre"]),
        ("Freezer Vertical 81lts - Pe-fv90 Peabody", ["freezer", "vertical", "lts", "peabody"]),
        ("Cabina Para Uñas Gelificadas .usado", ["cabina", "uñas", "gelificadas", "usado"]),
        ("de la al 12 34", []),
    ],
)
def test_course_rules(title, tokens):
    assert course_tokenize(title) == tokens
    tokenizer = train_word_tokenizer([title, title])
    assert tokenizer.tokenize(title) == tokens


def test_keep_numbers_keeps_digits_and_the_other_rules(tmp_path):
    title = "Freezer Vertical 81lts - Pe-fv90 Peabody de 2 puertas, i5 x"
    tokenizer = train_word_tokenizer([title, title], keep_numbers=True)
    expected = ["freezer", "vertical", "81lts", "fv90", "peabody", "2", "puertas", "i5"]
    assert tokenizer.tokenize(title) == expected
    tokenizer.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path).tokenize(title) == expected
    assert train_word_tokenizer([title, title]).tokenize(title) == ["freezer", "vertical", "lts", "peabody", "puertas"]


def test_trained_vocabulary_respects_size_and_frequency():
    titles = ["celular samsung libre"] * 3 + ["notebook lenovo"] * 2 + ["heladera única"]
    tokenizer = train_word_tokenizer(titles, max_words=4, min_frequency=2)
    vocabulary = tokenizer.get_vocab()
    assert vocabulary["[PAD]"] == 0 and vocabulary["[UNK]"] == 1
    assert len(vocabulary) == 2 + 4
    assert "única" not in vocabulary and "heladera" not in vocabulary  # seen once
    assert tokenizer("heladera samsung")["input_ids"] == [1, vocabulary["samsung"]]


def test_save_and_load_with_auto_tokenizer(tmp_path):
    tokenizer = train_word_tokenizer(["celular samsung libre", "celular motorola libre"], min_frequency=1)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded("Celular SAMSUNG 64gb")["input_ids"] == tokenizer("Celular SAMSUNG 64gb")["input_ids"]
    assert loaded.model_input_names == ["input_ids", "attention_mask"]
    assert loaded.pad_token_id == 0


def test_vocabulary_without_special_ids_is_rejected():
    with pytest.raises(ValueError, match=r"\[PAD\] to 0"):
        word_tokenizer_from_vocabulary({"[UNK]": 0, "[PAD]": 1})


def test_every_stopword_is_dropped_and_longer_words_are_kept():
    from meli_hf.data.tokenization import SPANISH_STOPWORDS

    tokenizer = train_word_tokenizer(["paraguas sobresale porteño contrato unosmas"] * 2)
    normalize = tokenizer.backend_tokenizer.normalizer.normalize_str
    assert normalize(" ".join(sorted(SPANISH_STOPWORDS))).split() == []
    assert tokenizer.tokenize("Paraguas para sobresale sobre porteño por contrato contra unosmas unos") == [
        "paraguas",
        "sobresale",
        "porteño",
        "contrato",
        "unosmas",
    ]


@requires_real_data
def test_normalisation_matches_course_preprocessing_on_real_titles():
    tokenizer = train_word_tokenizer(["placeholder"], max_words=10, min_frequency=1)
    pre_tokenize = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str
    normalize = tokenizer.backend_tokenizer.normalizer.normalize_str
    with gzip.open(REAL_DATA / "test.csv.gz", "rt", encoding="utf-8") as fh:
        titles = [row["title"] for row in csv.DictReader(fh)]
    differing = [t for t in titles if [w for w, _ in pre_tokenize(normalize(t))] != course_tokenize(t)]
    assert not differing, f"{len(differing)}/{len(titles)} titles differ, e.g. {differing[:3]}"
