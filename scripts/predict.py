#!/usr/bin/env python
"""Classify product titles with a trained checkpoint (MLP, CNN, LSTM or BETO), local or from the Hub, or with
an ensemble of checkpoints trained on the same categories.

The command lives in meli_hf/cli/predict.py; `python scripts/predict.py --help` lists its flags."""

from meli_hf.cli.predict import main

if __name__ == "__main__":
    main()
