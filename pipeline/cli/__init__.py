"""The ``complaintdesk`` command line: thin glue over the library (the typer app is in ``app``).

This module stays cheap to import. The OCR pool's processes start from a forkserver, and
multiprocessing imports the parent's main script in each of them, here the ``complaintdesk``
console script (``from pipeline.cli import main``): importing the app at the top of this module
loaded the whole command line, SQLAlchemy and the web app into every OCR process (about 50 MB
resident each, and a second at start) for nothing.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``pipeline.cli.app.main``): run the app; always ends in ``SystemExit``."""
    from pipeline.cli.app import main as run  # noqa: PLC0415 - see the module docstring

    run(argv)


__all__ = ["main"]
