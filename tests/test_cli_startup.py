"""The console script starts fast: ``--help`` and ``cases list`` import neither spaCy nor OpenCV nor torch
(each took 3-4 s before), and ``cases list`` keeps references whole on an 80-column terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

import storage
from pipeline.core.model import Channel
from tests.cli_support import add_case

EXE = str(Path(sys.executable).parent / "complaintdesk")
HEAVY = ("spacy", "thinc", "cv2", "torch")


def imported(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the console script under ``-X importtime``; the top-level packages it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", EXE, *args], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
               if line.startswith("import time:")}
    return proc, modules


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env.update(COMPLAINTDESK_HOME=str(tmp_path / "home"), COLUMNS="80")
    return env


def test_help_and_cases_list_do_not_import_spacy_opencv_or_torch(env: dict[str, str], tmp_path: Path) -> None:
    proc, modules = imported(env, "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "typer" in modules and "pipeline" in modules  # the measurement works
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    proc, modules = imported(env, "cases", "list", "--help")
    assert proc.returncode == 0 and not modules & set(HEAVY)
    url = f"sqlite:///{tmp_path / 'home' / 'complaintdesk.db'}"
    storage.migrate(url)
    proc, modules = imported(env, "cases", "list")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sqlalchemy" in modules and not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_cases_list_keeps_references_whole_at_80_columns(env: dict[str, str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'home' / 'complaintdesk.db'}"
    storage.migrate(url)
    with storage.open_database(url) as db:
        refs = [add_case(db, "窗口排队太久，工作人员态度很差。" * 5, channel=Channel.email,
                         name=f"<m{i}@example.org>", department="window_services", confidence=0.3)
                for i in range(3)]
    proc = subprocess.run([EXE, "cases", "list"], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), lines
    for ref in refs:
        assert sum(ref in line for line in lines) == 1, (ref, lines)
