"""Checking option values and paths before a command does any work, with the same exit code everywhere.

A bad value is a ``UsageError`` (exit 2) that names the allowed values; a path that does not exist is a
``PathNotFoundError`` (exit 4) for every command. Nothing here imports spaCy, OpenCV or SQLAlchemy.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.core.errors import PathNotFoundError, UsageError
from pipeline.core.model import Channel

if TYPE_CHECKING:
    import storage

#: the bundled label sets; read as TOML here, because importing the classifiers would import spaCy
LABELS_FILE = Path(__file__).resolve().parent.parent.parent / "classifiers" / "labels.toml"
#: the channels staff type complaints in from (`submit --channel`)
SUBMIT_CHANNELS = (Channel.manual.value, Channel.web.value)
#: every channel a case can have come from (`cases list --channel`)
CHANNELS = tuple(c.value for c in Channel)
#: the case statuses, as in ``storage.models.CASE_STATUSES`` (a test keeps them equal; importing
#: storage here would import SQLAlchemy for `--help`)
STATUSES = ("new", "triaged", "in_progress", "waiting_citizen", "resolved", "closed", "rejected")


def choice(option: str, value: str | None, allowed: Sequence[str]) -> str | None:
    """``value`` if it is one of ``allowed`` (or None).

    Raises:
        UsageError: it is not; the message names the allowed values.
    """
    if value is None or value in allowed:
        return value
    raise UsageError(f"{option}: {value!r} is not one of {', '.join(allowed)}")


def department_labels(labels_file: Path = LABELS_FILE) -> tuple[str, ...]:
    """The department labels of the bundled label sets (``classifiers/labels.toml``)."""
    data = tomllib.loads(labels_file.read_text(encoding="utf-8"))
    for label_set in data.get("label_set", []):
        if label_set.get("name") == "department":
            return tuple(label_set.get("labels", {}))
    return ()


def require_paths(paths: Iterable[Path]) -> None:
    """Check every path named on the command line exists, before any of them is processed.

    Raises:
        PathNotFoundError: one does not (exit code 4, whatever the command).
    """
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise PathNotFoundError(f"no such file or folder: {', '.join(missing)}")


#: ``--metrics-port``: the same option on ``worker`` and ``serve``, passed to ``start_metrics``
MetricsPort = Annotated[int | None, typer.Option(
    help="Serve Prometheus metrics at http://ADDR:PORT/metrics, a port for each process "
         "(default: no endpoint).")]
#: ``--metrics-addr``, likewise
MetricsAddr = Annotated[str, typer.Option(help="Address the metrics endpoint listens on.")]


def start_metrics(db: storage.Database, port: int | None, addr: str, *, queue: bool) -> None:
    """Serve this process's metrics (``pipeline.metrics``) if ``--metrics-port`` was given.

    ``queue``: whether the settings enable the task queue (its gauges are served then).

    Raises:
        ConfigError: the port cannot be listened on.
    """
    if port is None:
        return
    from pipeline import metrics  # imports SQLAlchemy: not for `--help`

    metrics.serve(db, port, addr, queue=queue)
