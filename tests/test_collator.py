import torch
from transformers import DataCollatorWithPadding

from meli_hf.collator import WordIdCollator
from meli_hf.tokenization import train_word_tokenizer


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
