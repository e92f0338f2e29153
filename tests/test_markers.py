"""The server marks follow the fixtures (tests/conftest.py), so deselecting a server deselects
every test that needs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import DOVECOT_FIXTURES, POSTGRES_PARAMS

ROOT = Path(__file__).resolve().parent.parent

# Collects the suite in a fresh interpreter and reports, per item, its fixtures and parameters,
# both for the items kept and for those ``-m`` deselected.
_COLLECT = """
import json, sys
import pytest

def describe(item):
    callspec = getattr(item, "callspec", None)
    params = [str(v) for v in callspec.params.values()] if callspec else []
    return {"id": item.nodeid, "fixtures": list(getattr(item, "fixturenames", ())), "params": params}

class Report:
    kept, deselected = [], []
    def pytest_deselected(self, items):
        self.deselected.extend(describe(i) for i in items)
    def pytest_collection_finish(self, session):
        self.kept.extend(describe(i) for i in session.items)

report = Report()
code = pytest.main(["--collect-only", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-m", sys.argv[1],
                    "tests"], plugins=[report])
print("REPORT " + json.dumps({"code": int(code), "kept": report.kept, "deselected": report.deselected}))
"""


def _uses_postgres(item: dict[str, list[str]]) -> bool:
    return any(p in POSTGRES_PARAMS for p in item["params"])


def _uses_dovecot(item: dict[str, list[str]]) -> bool:
    return bool(DOVECOT_FIXTURES & set(item["fixtures"]))


def test_not_postgres_and_not_dovecot_deselects_every_test_that_needs_them() -> None:
    proc = subprocess.run([sys.executable, "-c", _COLLECT, "not postgres and not dovecot"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(lines[-1].removeprefix("REPORT "))
    assert report["code"] == 0, proc.stdout[-3000:]
    leaked = [i["id"] for i in report["kept"] if _uses_postgres(i) or _uses_dovecot(i)]
    assert leaked == []
    # not vacuous: the suite has tests of both kinds, and the ones found are among the deselected
    assert any(_uses_postgres(i) for i in report["deselected"])
    assert any(_uses_dovecot(i) for i in report["deselected"])
    assert report["kept"], "nothing left to run without the servers"
