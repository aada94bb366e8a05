#!/usr/bin/env python
"""Learn word vectors from the training titles of a data folder (fastText skip-gram), written as word2vec text
for `scripts/train.py --word_vectors`."""

from meli_hf.cli.word_vectors import main

if __name__ == "__main__":
    main()
