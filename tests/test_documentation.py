"""The front door never lies: every command of the `bash` blocks of README and docs/, and README's Python example,
runs here as written, unless it is listed below with the reason it cannot (the network, a server that runs until
stopped, files of the user's, hours on the real sample)."""

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
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "benchmarks-history.md")]
# What a command names that keeps it from running here, and why.
NOT_RUN_WHEN_NAMED = {
    "../shared/data": "the real sample: minutes to hours a command (BENCHMARKS.md reproduces their figures)",
    "$D": "the real sample (the best model's recipe)",
    "course/": "the course's files are the user's",
    "--input titles.": "a file of the user's",
    "outputs/ensemble.json": "an ensemble of runs on the real sample",
    "cat titles.txt": "a file of the user's",
    "USER/": "the Hub",
    "outputs/lstm": "a checkpoint of a run on the real sample",
    "outputs/best": "a checkpoint of a run on the real sample",
    "run.json": "an arguments file of the user's",
}
# Command prefixes that do not run here, and why.
NOT_RUN = {
    "make train": "the same as `python scripts/train.py --model mlp`, which runs",
    "make test": "the test suite itself",
    "python scripts/train.py --model beto": "BETO comes from the Hub",
    "accelerate launch": "tests/training/test_run.py's test_accelerate_launch_and_two_process_torchrun runs it",
    "torchrun": "tests/training/test_run.py's test_accelerate_launch_and_two_process_torchrun runs it",
    "pip install": "the network",
    "python -m venv": "a new environment, installed from the network (the slim install)",
    "python scripts/serve.py": "a server runs until it is stopped (tests/inference/test_service.py runs it)",
    "curl": "needs the server",
    "D=": "a variable of the best model's recipe",
}


def documented_commands() -> list[list[str]]:
    """The commands of the pages' bash blocks as argument lists, continuation lines joined, comments dropped; a
    command on several pages once."""
    commands = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                arguments = shlex.split(line, comments=True)
                if arguments and arguments not in commands:
                    commands.append(arguments)
    return commands


def runs_here(arguments: list[str]) -> bool:
    command = " ".join(arguments)
    named = any(name in command for name in NOT_RUN_WHEN_NAMED)
    return not named and not any(command.startswith(prefix) for prefix in NOT_RUN)


def test_every_documented_command_runs_or_says_why_not():
    commands = [" ".join(arguments) for arguments in documented_commands()]
    assert len(commands) > 30
    unused = [prefix for prefix in NOT_RUN if not any(c.startswith(prefix) for c in commands)]
    unused += [name for name in NOT_RUN_WHEN_NAMED if not any(name in c for c in commands)]
    assert unused == [], "reasons for commands the pages no longer have"


@pytest.mark.slow
def test_documented_commands_run_as_written(sample_dir, tmp_path):
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
    for arguments in filter(runs_here, documented_commands()):
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
