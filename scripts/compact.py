#!/usr/bin/env python
"""Write a compact serving copy of a trained MLP, CNN or LSTM checkpoint: its word embeddings and its linear part
(`--linear_bigram_buckets`) stored as int8 with one float scale per row, about a quarter of the size.

The command lives in meli_hf/cli/compact.py; `python scripts/compact.py --help` lists its flags."""

from meli_hf.cli.compact import main

if __name__ == "__main__":
    main()
