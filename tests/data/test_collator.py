import torch
from transformers import DataCollatorWithPadding

from meli_hf.data.collator import WordIdCollator
from meli_hf.data.tokenization import train_word_tokenizer


def test_matches_the_tokenizer_padding():
    tokenizer = train_word_tokenizer(["celular samsung libre dual", "notebook lenovo", "celular samsung"] * 2)
    features = [{"input_ids": ids, "label": i} for i, ids in enumerate([[2, 3, 4, 5], [6], [7, 2]])]
    expected = DataCollatorWithPadding(tokenizer)([dict(f) for f in features])
    batch = WordIdCollator(pad_token_id=tokenizer.pad_token_id)(features)
    assert set(batch) == set(expected) == {"input_ids", "attention_mask", "labels"}
    for key in batch:
        torch.testing.assert_close(batch[key], expected[key].long())


def test_titles_without_known_words_become_all_padding():
    batch = WordIdCollator()([{"input_ids": []}, {"input_ids": []}])
    assert batch["input_ids"].tolist() == [[0], [0]]
    assert batch["attention_mask"].tolist() == [[0], [0]]
    assert "labels" not in batch


def test_arrow_batches_equal_row_batches(sample_dir):
    from meli_hf.data.collator import WordIdBatches
    from meli_hf.data.loading import load_meli

    train = load_meli(sample_dir, max_rows={"train": 300}, seed=3)["train"]  # a subset: an indices mapping
    batches = WordIdBatches(train)
    indices = [5, 0, 299, 17]
    from_arrow = WordIdCollator()(batches.__getitems__(indices))
    from_rows = WordIdCollator()([train[i] for i in indices])
    assert len(batches) == 300 and batches[17] == {"input_ids": train[17]["input_ids"], "label": train[17]["label"]}
    for key in from_rows:
        torch.testing.assert_close(from_arrow[key], from_rows[key])


def test_lengths_come_from_the_arrow_offsets(sample_dir):
    from meli_hf.data.collator import WordIdBatches
    from meli_hf.data.loading import load_meli

    train = load_meli(sample_dir, max_rows={"train": 300}, seed=3)["train"]
    assert WordIdBatches(train).lengths() == [len(row["input_ids"]) for row in train]
