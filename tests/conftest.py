from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.db_fixtures import *  # noqa: F403

# A test that reaches a server must carry that server's mark, or `-m "not postgres"` (a machine
# without PostgreSQL) runs it anyway. Marking by hand leaked: the marks follow the fixtures instead.
#: a parametrised fixture whose parameter is one of these runs its test on PostgreSQL
POSTGRES_PARAMS = frozenset({"postgresql"})
#: a test that requests one of these fixtures, directly or through another fixture, starts Dovecot
DOVECOT_FIXTURES = frozenset({"dovecot", "dovecot_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and any(
            isinstance(value, str) and value in POSTGRES_PARAMS for value in callspec.params.values()
        ):
            item.add_marker(pytest.mark.postgres)
        if DOVECOT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dovecot)


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
