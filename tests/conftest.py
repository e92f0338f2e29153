from __future__ import annotations

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
