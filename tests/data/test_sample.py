import gzip
import json
import subprocess
import sys

import pytest

from meli_hf.data.sample import generate_sample
from meli_hf.errors import MeliError


def test_the_sample_never_replaces_files_of_the_same_names(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    (course / "spanish.train.jsonl.gz").write_bytes(b"the user's real course file")
    with pytest.raises(MeliError, match=r"course already holds spanish.train.jsonl.gz; write the sample to another"):
        generate_sample(course, train_rows=100)
    assert (course / "spanish.train.jsonl.gz").read_bytes() == b"the user's real course file"
    assert sorted(p.name for p in course.iterdir()) == ["spanish.train.jsonl.gz"]
    result = subprocess.run(
        [sys.executable, "-m", "meli_hf.cli.sample", "--output_dir", str(course), "--rows", "100"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: {course} already holds spanish.train.jsonl.gz; write the sample to another folder"
    ]


def test_the_sample_is_deterministic_and_regenerates_its_own_files(tmp_path):
    first = generate_sample(tmp_path / "a", train_rows=100)
    again = generate_sample(tmp_path / "a", train_rows=100, overwrite=True)
    other = generate_sample(tmp_path / "b", train_rows=100)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in other.iterdir()) and not [n for n in names if n.startswith(".")]
    assert all((first / n).read_bytes() == (other / n).read_bytes() for n in names) and again == first
    with gzip.open(first / "spanish.train.jsonl.gz", "rt") as fh:
        assert sum(1 for _ in map(json.loads, fh)) == 100
