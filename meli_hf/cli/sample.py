"""`python scripts/sample.py`: write the deterministic synthetic sample in the course format."""

from __future__ import annotations

import argparse

from ..data.sample import DEFAULT_SEED, DEFAULT_TRAIN_ROWS, generate_sample
from . import user_errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=generate_sample.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output_dir", required=True, help="Folder to write the course-format files into.")
    parser.add_argument("--rows", type=int, default=DEFAULT_TRAIN_ROWS, help="Train rows (validation: a quarter).")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Random seed; same seed, same files.")
    args = parser.parse_args()
    with user_errors():
        print(generate_sample(args.output_dir, args.rows, args.seed))


if __name__ == "__main__":
    main()


if __name__ == "__main__":
    main()
