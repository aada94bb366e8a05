#!/usr/bin/env python
"""Write the deterministic synthetic sample in the course format (the default run's data)."""

from meli_hf.cli.sample import main

if __name__ == "__main__":
    main()
