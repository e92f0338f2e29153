"""``complaintdesk scan`` on a hostile folder, end to end: real Tesseract, the bundled model, SQLite and
PostgreSQL. Every entry is either taken or reported; nothing outside the folder is read or stored.

Root reads any file whatever its mode, so when the tests run as root the scan runs without the
capabilities that let it (``setpriv --bounding-set=-dac_override,-dac_read_search``): a file of mode 000
then gives a real permission error. (Switching to ``nobody`` does not work everywhere: in some sandboxes
``nobody`` may not exec the interpreter again, which the OCR process pool needs.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import EXE, SAMPLES, cli_env, json_lines  # noqa: F401 - cli_env is a fixture

SECRET = b"\x89PNG\r\n\x1a\n the shadow file: root:$6$not-for-the-blob-store"


def without_dac_override() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:  # pragma: no cover - util-linux is in the CI image
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def scan(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*without_dac_override(), EXE, *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def hostile_box(workdir: Path) -> Path:
    """Two good slips among every kind of entry that must not be taken, next to a secret outside."""
    outside = workdir / "outside"
    outside.mkdir()
    secret = outside / "shadow"
    secret.write_bytes(SECRET)
    box = workdir / "box"
    (box / "locked-folder").mkdir(parents=True)
    png = next(p for p in sorted(SAMPLES.iterdir()) if p.suffix == ".png")
    jpgs = sorted(p for p in SAMPLES.iterdir() if p.suffix == ".jpg")
    shutil.copy(png, box / "good-1.png")
    shutil.copy(jpgs[0], box / "good-2.jpg")
    shutil.copy(jpgs[1], box / "locked.jpg")
    shutil.copy(jpgs[2], box / "locked-folder" / "inside.jpg")
    (box / "letter.docx").write_bytes(b"PK\x03\x04 a word document")
    (box / "notes.txt").write_text("call back Mr Li\n")
    (box / "loop.png").symlink_to("loop.png")
    (box / "x.png").symlink_to(secret)
    os.mkfifo(box / "pipe.png")
    os.chmod(box / "locked.jpg", 0)
    os.chmod(box / "locked-folder", 0)
    return box


NOT_TAKEN = {  # entry -> a word its reason must contain
    "locked.jpg": "permission denied",
    "locked-folder": "permission denied",
    "letter.docx": ".docx",
    "notes.txt": ".txt",
    "loop.png": "loop",
    "x.png": "outside the scanned folder",
    "pipe.png": "FIFO",
}


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for sub in tmp_path.rglob("*"):  # give locked folders their modes back so pytest can remove them
        if sub.is_dir() and not sub.is_symlink():
            os.chmod(sub, 0o755)


def stored_blobs(env: dict[str, str]) -> list[bytes]:
    return [p.read_bytes() for p in (Path(env["COMPLAINTDESK_HOME"]) / "originals").rglob("*") if p.is_file()]


def test_hostile_folder_every_good_slip_is_a_case_and_every_other_entry_is_reported(
    cli_env: dict[str, str], workdir: Path  # noqa: F811 - the fixture imported from test_cli
) -> None:
    env = cli_env
    box = hostile_box(workdir)
    assert scan(env, "init").returncode == 0

    proc = scan(env, "scan", str(box), "--json")
    assert proc.returncode == 3, proc.stderr  # the batch ran, but not everything was taken
    assert "Traceback" not in proc.stderr
    results = {Path(r["source"]).name: r for r in json_lines(proc.stdout)}
    assert set(results) == {"good-1.png", "good-2.jpg", *NOT_TAKEN}
    assert results["good-1.png"]["outcome"] == results["good-2.jpg"]["outcome"] == "created"
    for name, word in NOT_TAKEN.items():
        assert results[name]["outcome"] == "skipped", results[name]
        assert word in results[name]["reason"], results[name]
        assert results[name]["reference"] is None
    # nothing from outside the folder was read into the store or echoed
    assert SECRET not in stored_blobs(env)
    assert "shadow" not in proc.stdout and "not-for-the-blob-store" not in proc.stdout

    # a second scan of the same folder changes nothing and says the same
    blobs = sorted(stored_blobs(env))
    again = scan(env, "scan", str(box))
    assert again.returncode == 3, again.stderr
    lines = again.stdout.splitlines()
    for name, word in NOT_TAKEN.items():
        row = next(line for line in lines if f" {name} " in line)
        assert "skipped" in row and word in row, row
    assert "2 matched, 7 skipped" in again.stdout
    assert sorted(stored_blobs(env)) == blobs
    cases = json_lines(scan(env, "cases", "list", "--json").stdout)
    assert sorted(Path(c["source"]).name for c in cases) == ["good-1.png", "good-2.jpg"]


def test_a_link_out_of_the_folder_is_followed_only_when_asked(workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env["COMPLAINTDESK_HOME"] = str(workdir / "home")
    outside = workdir / "elsewhere"
    outside.mkdir()
    slip = next(p for p in sorted(SAMPLES.iterdir()) if p.suffix == ".png")
    shutil.copy(slip, outside / "slip.png")
    box = workdir / "box"
    box.mkdir()
    (box / "linked.png").symlink_to(outside / "slip.png")
    (box / "linked-folder").symlink_to(outside)
    assert scan(env, "init").returncode == 0

    refused = scan(env, "scan", str(box), "--json")
    assert refused.returncode == 3, refused.stderr
    assert {r["outcome"] for r in json_lines(refused.stdout)} == {"skipped"}
    assert stored_blobs(env) == []

    followed = scan(env, "scan", str(box), "--json", "--follow-symlinks")
    assert followed.returncode == 0, followed.stderr
    results = json_lines(followed.stdout)
    # the same bytes reached twice (the file link, and the folder link): one case, one match
    assert sorted(r["outcome"] for r in results) == ["created", "matched"]
    assert len({r["reference"] for r in results}) == 1


HOSTILE_NAMES = [  # copies of one good slip, so OCR runs once
    b"--help.png",
    b"new\nline.png",
    b"\x1b[31mred\x1b[0m \x1b]0;pwned\x07.png",
    b"\xff\xfe not utf-8.png",
    "\u202egnp.exe 投诉.png".encode(),
    b"[red]marked[bold]" + b"x" * 220 + b".png",
]


def test_hostile_file_names_give_valid_json_and_printable_output(
    cli_env: dict[str, str], tmp_path: Path  # noqa: F811 - the fixture imported from test_cli
) -> None:
    slip = next(p for p in sorted(SAMPLES.iterdir()) if p.suffix == ".png")
    box = os.fsencode(tmp_path / "box")
    os.makedirs(box + b"/x[")
    for name in HOSTILE_NAMES:
        with open(box + b"/" + name, "wb") as f:
            f.write(slip.read_bytes())
    with open(box + b"/x[/]\x9b[bold]empty.png", "wb"):  # the folder and file names make "[/]"
        pass
    with open(box + b"/\x1b[2Jnotes\r.docx", "wb") as f:
        f.write(b"PK")
    env = {**cli_env, "COLUMNS": "160"}
    subprocess.run([EXE, "init"], env=env, check=True, capture_output=True)

    proc = subprocess.run([EXE, "scan", os.fsdecode(box), "--json"], env=env, capture_output=True,
                          check=False)
    assert proc.returncode == 3, proc.stderr.decode(errors="replace")
    out = proc.stdout.decode("utf-8")  # valid UTF-8, whatever bytes the names held
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == len(HOSTILE_NAMES) + 2
    assert sorted(r["outcome"] for r in rows) == ["created"] + ["matched"] * 5 + ["quarantined", "skipped"]
    assert printable_only(out)

    again = subprocess.run([EXE, "scan", os.fsdecode(box)], env=env, capture_output=True, check=False)
    assert again.returncode == 3, again.stderr.decode(errors="replace")
    table = again.stdout.decode("utf-8")
    assert printable_only(table), table
    assert "6 matched, 1 quarantined, 1 skipped" in table
    assert "--help.png" in table and "new line.png" in table and "\\xff\\xfe not utf-8.png" in table
    assert "[red]marked[bold]" in table  # shown as it is, not taken as markup

    missing_path = os.fsdecode(box + b"/x[/]nope[/red]")
    missing = subprocess.run([EXE, "scan", missing_path], env=env, capture_output=True, check=False)
    assert missing.returncode == 4, missing.stderr  # a missing path is 4 for every command
    assert b"no such file or folder" in missing.stderr and b"x[/]nope[/red]" in missing.stderr


def printable_only(text: str) -> bool:
    """No character a terminal would act on, other than the line breaks between lines."""
    bad = ("Cc", "Cf", "Cs", "Zl", "Zp")
    return not [ch for ch in text if ch != "\n" and unicodedata.category(ch) in bad]
