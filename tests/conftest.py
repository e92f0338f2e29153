from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.db_fixtures import *  # noqa


@pytest.fixture(autouse=True)
def isolated_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test, and every CLI subprocess it starts, gets its own data directory.

    The default home is the per-user data directory, so a test that forgot to set one would write into
    the developer's real database. ``XDG_DATA_HOME`` covers tests that drop ``COMPLAINTDESK_HOME`` on
    purpose (to test the default): the per-user directory then is in tmp too. The developer's own
    settings (a production COMPLAINTDESK_DATABASE_URL, ...) are dropped; a test may set its own.
    """
    for key in list(os.environ):
        if key.startswith("COMPLAINTDESK_") and not key.startswith("COMPLAINTDESK_TEST_"):
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("COMPLAINTDESK_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    return home
