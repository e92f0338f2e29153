"""The ``complaintdesk`` command line: thin glue over the library (see ``app``)."""

from pipeline.cli.app import app, main

__all__ = ["app", "main"]
