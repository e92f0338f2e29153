"""The ``complaintdesk`` command line: thin glue over the library (the typer app is in ``app``)."""

from pipeline.cli.app import main

__all__ = ["main"]
