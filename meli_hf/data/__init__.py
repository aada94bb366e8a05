"""Files to a tokenized `DatasetDict`: loading and caching, tokenizers, the collator, word vectors and the synthetic
sample."""
