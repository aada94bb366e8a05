"""README's commands run as written: every command of its `bash` blocks, and its Python example, runs here unless it
is listed below with the reason it cannot (the network, a server that runs until stopped, data of the user's)."""

import gzip
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# Command prefixes that do not run here, and why.
NOT_RUN = {
    "make train": "the same as `python scripts/train.py --model mlp`, which runs",
    "make test": "the test suite itself",
    "python scripts/train.py --model lstm --data_dir ../shared": "an hour on the real sample",
    "python scripts/train.py --model cnn --data_dir course/": "the course's files are the user's",
    "python scripts/train.py --model beto": "BETO comes from the Hub",
    "accelerate launch": "the course's files are the user's",
    "python scripts/train.py run.json": "an arguments file of the user's",
    "python scripts/train.py --model lstm --data_dir course/ --push_to_hub": "the Hub",
    "pip install": "the network",
    "python scripts/serve.py": "a server runs until it is stopped (tests/inference/test_service.py runs it)",
    "curl": "needs the server",
}


def readme_commands() -> list[list[str]]:
    """The commands of README's bash blocks as argument lists, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if arguments := shlex.split(line, comments=True):
                commands.append(arguments)
    return commands


def runs_here(arguments: list[str]) -> bool:
    return not any(" ".join(arguments).startswith(prefix) for prefix in NOT_RUN)


def test_every_readme_command_runs_or_says_why_not():
    commands = readme_commands()
    assert len(commands) > 10
    unused = [prefix for prefix in NOT_RUN if not any(" ".join(c).startswith(prefix) for c in commands)]
    assert unused == [], "reasons for commands README no longer has"


@pytest.mark.slow
def test_readme_commands_run_as_written(sample_dir, tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    # The file README's --evaluate command reads: the sample's test split as a challenge CSV.
    with (
        gzip.open(sample_dir / "spanish.test.jsonl.gz", "rt") as source,
        gzip.open(tmp_path / "test.csv.gz", "wt") as out,
    ):
        out.write("title,category\n")
        for record in map(json.loads, source):
            out.write(f'"{record["title"]}",{record["category"]}\n')
    ran = []
    for arguments in filter(runs_here, readme_commands()):
        assert arguments[0] == "python", arguments
        result = subprocess.run(
            [sys.executable, *arguments[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, f"{arguments}\n{result.stderr[-3000:]}"
        ran.append(" ".join(arguments))
    assert (
        any("train.py" in c for c in ran) and any("predict.py" in c for c in ran) and any("compact" in c for c in ran)
    )
    assert (tmp_path / "outputs" / "predictions.csv").is_file() and (tmp_path / "outputs" / "report").is_dir()
    example = re.search(r"```python\n(.*?)```", README, flags=re.S).group(1)
    result = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
