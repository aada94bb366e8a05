#!/usr/bin/env python
"""Train an MLP, CNN, LSTM or BETO title classifier on MeLi 2019 data.

The command lives in meli_hf/cli/train.py; `python scripts/train.py --help` lists its flags."""

from meli_hf.cli.train import main

if __name__ == "__main__":
    main()
