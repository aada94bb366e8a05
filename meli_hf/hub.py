"""The Hugging Face Hub: pretrained checkpoints in, trained ones out.

Hub failures become one `MeliError` line that says whether the network or the credentials are at fault, after a
single reachability check instead of a minute of retries.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from .errors import MeliError

logger = logging.getLogger(__name__)

HUB_CHECK_TIMEOUT_S = 10
Loaded = TypeVar("Loaded")


def hub_unreachable_reason() -> str | None:
    """Why the Hub cannot be reached (offline mode, no network), or None when one request to it got an answer."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.is_offline_mode():
        return "HF_HUB_OFFLINE is set"
    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_CHECK_TIMEOUT_S)
    except Exception as err:  # noqa: BLE001 - any transport failure means the same: no Hub from here
        return f"{constants.ENDPOINT} cannot be reached: {err}"
    return None


def load_pretrained(
    loader: Callable[..., Loaded], name_or_path: str, flag: str, *, trust_remote_code: bool, **kwargs
) -> Loaded:
    """`loader(name_or_path)` (a `from_pretrained`) for a local folder, a cached Hub id or a reachable Hub; else one
    line naming the id, the flag that set it and how to point it at a local copy.

    `trust_remote_code` is passed on as given, never left unset: unset, transformers asks on standard input whether
    to run the Python files a checkpoint ships (its `auto_map`), and a `y` piped in by a script would run them."""
    kwargs["trust_remote_code"] = bool(trust_remote_code)
    with held_transformers_logs() as records:  # a load that fails says its error alone
        loaded = _load(loader, name_or_path, flag, kwargs)
    pass_on(records)
    return loaded


def load_checkpoint(name_or_path: str, flag: str, *, trust_remote_code: bool, **model_kwargs) -> tuple:
    """A checkpoint's tokenizer and sequence-classification model, each through `load_pretrained`."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, name_or_path, flag, trust_remote_code=trust_remote_code)
    model = load_pretrained(
        AutoModelForSequenceClassification.from_pretrained,
        name_or_path,
        flag,
        trust_remote_code=trust_remote_code,
        **model_kwargs,
    )
    return tokenizer, model


def reads_as_path(name_or_path: str) -> bool:
    """A name that is a path, not a Hub id: absolute, relative with `.` or `~`, or inside an existing folder."""
    path = Path(name_or_path)
    return path.is_absolute() or name_or_path.startswith((".", "~")) or bool(path.parent.name and path.parent.is_dir())


def _load(loader: Callable[..., Loaded], name_or_path: str, flag: str, kwargs: dict) -> Loaded:
    path = Path(name_or_path)
    if path.is_dir():
        from safetensors import SafetensorError

        try:
            return loader(name_or_path, **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:
            raise _load_error(name_or_path, flag, err) from err
    if reads_as_path(name_or_path):
        raise MeliError(f"cannot load {name_or_path} ({flag}): no such folder")
    reason = hub_unreachable_reason()
    try:
        # Without the Hub, the Hugging Face cache may still hold the files; with it, the usual update check runs.
        return loader(name_or_path, local_files_only=reason is not None, **kwargs)
    except ValueError as err:
        raise _load_error(name_or_path, flag, err) from err
    except OSError as err:
        if reason is None:
            raise _load_error(name_or_path, flag, err) from err
        raise MeliError(
            f"cannot load {name_or_path!r} ({flag}): it is no local folder, the Hugging Face cache does not hold it, "
            f"and {reason}. Download it where the Hub is reachable (`hf download {name_or_path} --local-dir DIR`) "
            f"and pass {flag} DIR."
        ) from err


def _load_error(name_or_path: str, flag: str, err: BaseException) -> MeliError:
    """One line for a checkpoint that failed to load; code that the checkpoint ships is named as the reason."""
    message = str(err).strip()
    if isinstance(err, ValueError) and "custom code" in message:  # transformers' refusal of an `auto_map`
        return MeliError(
            f"refusing to load {name_or_path} ({flag}): it ships Python code of its own (`auto_map` in its config), "
            "which is run only with --trust_remote_code; read that code first, and pass the flag only if you trust it"
        )
    problem = message.splitlines()[0] if message else type(err).__name__
    return MeliError(f"cannot load {name_or_path} ({flag}): {problem}")


class _HeldRecords(logging.Filter):
    """Holds back the log records that `holds` picks."""

    def __init__(self, holds: Callable[[logging.LogRecord], bool]):
        super().__init__()
        self.holds = holds
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.holds(record):
            self.records.append(record)
            return False
        return True


def is_load_report(record: logging.LogRecord) -> bool:
    """transformers' table of the weights a checkpoint lacks, or holds beyond the model's."""
    return "LOAD REPORT" in record.getMessage()


@contextlib.contextmanager
def held_transformers_logs(
    holds: Callable[[logging.LogRecord], bool] = lambda record: True,
) -> Iterator[list[logging.LogRecord]]:
    """Hold back what transformers logs (to its own handlers) inside the block, so that what it means can be said in
    one line: a load that fails says only its error. The caller passes on the records it does not explain with
    `pass_on`."""
    held = _HeldRecords(holds)
    handlers = list(logging.getLogger("transformers").handlers)
    for handler in handlers:
        handler.addFilter(held)
    try:
        yield held.records
    finally:
        for handler in handlers:
            handler.removeFilter(held)


def pass_on(records: list[logging.LogRecord]) -> None:
    """Log held records as they would have been."""
    for record in records:
        logging.getLogger(record.name).handle(record)


def load_with_new_head(loader: Callable[..., Loaded], name_or_path: str, flag: str, **kwargs):
    """Load a pretrained encoder with a new, randomly initialised classification head, which transformers reports
    as a table of missing weights: said in one line when the head's weights are all that is new (from the loading
    info); a report naming other weights is shown as it is."""
    with held_transformers_logs(is_load_report) as reports:
        model, info = load_pretrained(loader, name_or_path, flag, output_loading_info=True, **kwargs)
    new = sorted(info["missing_keys"])
    if (
        new
        and all(key.startswith("classifier.") for key in new)
        and not info["unexpected_keys"]
        and not info["mismatched_keys"]
    ):
        logger.info(
            "new classification head for %d categories (%s initialised)", model.config.num_labels, ", ".join(new)
        )
    else:
        pass_on(reports)
    return model


def push_failure_cause(err: BaseException) -> str:
    """`network`, `credentials` or `other`: what a failed Hub upload needs fixing."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    seen = err
    while seen is not None:
        if isinstance(seen, (OfflineModeIsEnabled, httpx2.TransportError, ConnectionError, TimeoutError)):
            return "network"
        if isinstance(seen, HfHubHTTPError) and seen.response is not None:
            if seen.response.status_code in (401, 403):
                return "credentials"
        seen = seen.__cause__ or seen.__context__
    return "other"


def _push_advice(err: BaseException, repo: str | None) -> str:
    return {
        "network": "the Hub could not be reached (network or HF_HUB_OFFLINE)",
        "credentials": "the Hub refused the credentials; log in with `hf auth login` (or set HF_TOKEN) with "
        f"write access to {repo!r}",
        "other": f"the Hub answered: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
    }[push_failure_cause(err)]


@contextlib.contextmanager
def hub_errors(training_args, doing: str) -> Iterator[None]:
    """Hub failures before training (the Trainer creates the repository when it pushes at every save) as one line."""
    if not training_args.push_to_hub:
        yield
        return
    import httpx2

    try:
        yield
    except (OSError, httpx2.HTTPError) as err:
        repo = training_args.hub_model_id
        raise MeliError(
            f"--push_to_hub: {doing} {repo!r} failed before training: {_push_advice(err, repo)}; train without "
            "--push_to_hub, or push later with `hf upload`"
        ) from err


def push_checkpoint(trainer) -> None:
    """Push the saved checkpoint folder; a failure is reported after the local save, which stays intact."""
    output_dir, repo = trainer.args.output_dir, trainer.args.hub_model_id
    try:
        trainer.push_to_hub(commit_message="meli-hf checkpoint")
    except Exception as err:  # noqa: BLE001 - network, auth and repo errors all end the same way
        raise MeliError(
            f"the checkpoint is saved in {output_dir}, but pushing it to the Hub as {repo!r} failed: "
            f"{_push_advice(err, repo)}. Push the folder later with `hf upload {repo} {output_dir}`."
        ) from err
    logger.info("pushed %s to the Hub as %s", output_dir, repo)
