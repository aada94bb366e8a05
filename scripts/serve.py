#!/usr/bin/env python
"""Serve a trained checkpoint (or an ensemble) over HTTP: JSON predictions with dynamic batching, a health check and a
demo page (needs the `serve` extra: `pip install -e ".[serve]"`).

The command lives in meli_hf/cli/serve.py; `python scripts/serve.py --help` lists its flags."""

from meli_hf.cli.serve import main

if __name__ == "__main__":
    main()
