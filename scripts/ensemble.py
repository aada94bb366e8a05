#!/usr/bin/env python
"""Pick an ensemble of trained checkpoints by forward selection on the validation split, and write it to a file that
`predict.py --model` and `train.py --teacher` take like one checkpoint.

The command lives in meli_hf/cli/ensemble.py; `python scripts/ensemble.py --help` lists its flags."""

from meli_hf.cli.ensemble import main

if __name__ == "__main__":
    main()
