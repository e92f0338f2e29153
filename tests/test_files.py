"""pipeline.files: walking a scanned folder that anyone may have filled, and reading its files safely."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pipeline.core.errors import ConfigError, InputError, UnreadableScanError, UnsupportedFormatError
from pipeline.files import Skipped, iter_files, open_regular, printable, source_name, storable


def walk(*paths: Path, follow_symlinks: bool = False) -> dict[str, str]:
    """name relative to the first path -> "take" or the skip reason."""
    base = paths[0]
    out: dict[str, str] = {}
    for entry in iter_files(paths, follow_symlinks=follow_symlinks):
        path, what = (entry.path, entry.reason) if isinstance(entry, Skipped) else (entry, "take")
        key = str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
        assert key not in out, f"{key} seen twice"
        out[key] = what
    return out


@pytest.fixture
def box(tmp_path: Path) -> Path:
    box = tmp_path / "box"
    (box / "sub" / "deeper").mkdir(parents=True)
    (box / ".sync").mkdir()
    for name in ("b.png", "a.JPG", "sub/c.pdf", "sub/deeper/d.tiff", ".sync/state.png", ".hidden.png"):
        (box / name).write_bytes(b"scan")
    return box


def test_a_folder_yields_its_scans_depth_first_in_name_order_skipping_hidden_ones(box: Path) -> None:
    entries = list(iter_files([box]))
    assert entries == [box / "a.JPG", box / "b.png", box / "sub" / "c.pdf", box / "sub" / "deeper" / "d.tiff"]
    assert entries == list(iter_files([box]))


def test_other_files_are_reported_with_their_suffix_but_taken_when_named(box: Path) -> None:
    (box / "letter.docx").write_bytes(b"PK")
    (box / "README").write_text("no suffix")
    found = walk(box)
    assert ".docx file: not a scan format" in found["letter.docx"]
    assert "PNG, JPEG, TIFF, PDF" in found["letter.docx"]
    assert "without a suffix" in found["README"]
    assert list(iter_files([box / "letter.docx"])) == [box / "letter.docx"]


def test_fifos_are_reported_and_never_opened(box: Path) -> None:
    os.mkfifo(box / "pipe.png")
    # opening a FIFO for reading blocks until a writer comes; a walk that opened it would hang here
    assert "named pipe (FIFO)" in walk(box)["pipe.png"]
    assert list(iter_files([box / "pipe.png"])) == [Skipped(box / "pipe.png", walk(box)["pipe.png"])]
    with pytest.raises(UnsupportedFormatError, match="FIFO"):
        read_all(box / "pipe.png")


def test_devices_are_reported(tmp_path: Path) -> None:
    (tmp_path / "null.png").symlink_to("/dev/null")
    assert "outside the scanned folder" in walk(tmp_path)["null.png"]
    assert "a device" in walk(tmp_path, follow_symlinks=True)["null.png"]


def test_symlinks_inside_the_folder(box: Path) -> None:
    (box / "to-b.png").symlink_to("b.png")
    (box / "to-sub").symlink_to("sub")
    (box / "self").symlink_to(".")
    (box / "loop-a.png").symlink_to("loop-b.png")
    (box / "loop-b.png").symlink_to("loop-a.png")
    (box / "broken.png").symlink_to("nothing.png")
    found = walk(box)
    assert found["to-b.png"] == "take"
    assert "link to a folder; not followed" in found["to-sub"]
    assert "link to a folder; not followed" in found["self"]
    assert "loop" in found["loop-a.png"] and "loop" in found["loop-b.png"]
    assert "broken symbolic link" in found["broken.png"]
    # followed, each folder is still walked once: the loop back to the folder itself ends there
    followed = walk(box, follow_symlinks=True)
    assert "already being scanned" in followed["self"] and "already being scanned" in followed["to-sub"]
    taken = [k for k, v in followed.items() if v == "take"]
    assert taken == ["a.JPG", "b.png", "sub/c.pdf", "sub/deeper/d.tiff", "to-b.png"]


def test_links_leaving_the_folder_are_not_followed_unless_asked(tmp_path: Path, box: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"secret")
    (box / "x.png").symlink_to(outside / "secret.png")
    (box / "up").symlink_to(outside)
    (box / "sub" / "rel.png").symlink_to("../../outside/secret.png")
    found = walk(box)
    for name in ("x.png", "up", "sub/rel.png"):
        assert "outside the scanned folder" in found[name], name
        assert "secret" not in found[name]
    followed = walk(box, follow_symlinks=True)
    assert followed["x.png"] == followed["up/secret.png"] == followed["sub/rel.png"] == "take"


def test_a_named_link_is_followed_and_its_target_is_the_scanned_folder(tmp_path: Path, box: Path) -> None:
    (tmp_path / "box-link").symlink_to(box)
    (box / "back.png").symlink_to(tmp_path / "box-link" / "b.png")  # resolves inside box
    taken = [e for e in iter_files([tmp_path / "box-link"]) if not isinstance(e, Skipped)]
    assert [p.name for p in taken] == ["a.JPG", "b.png", "back.png", "c.pdf", "d.tiff"]


def test_a_missing_path_is_a_config_error_and_a_named_loop_is_skipped(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file or folder"):
        list(iter_files([tmp_path / "nope"]))
    (tmp_path / "loop.png").symlink_to("loop.png")
    assert walk(tmp_path / "loop.png") == {".": "a symbolic link loop"}


def read_all(path: Path) -> bytes:
    with open_regular(path) as f:
        return f.read()


def test_open_regular_reads_a_regular_file_whole(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk of the blob store's copy
    (tmp_path / "scan.png").write_bytes(data)
    assert read_all(tmp_path / "scan.png") == data


def test_reading_errors_are_input_errors_with_a_reason_not_oserrors(tmp_path: Path) -> None:
    with pytest.raises(UnreadableScanError, match=r"cannot read gone\.png: no such file or directory"):
        read_all(tmp_path / "gone.png")
    with pytest.raises(UnsupportedFormatError, match="a folder"):
        read_all(tmp_path)
    (tmp_path / "file.png").write_bytes(b"scan")
    with pytest.raises(InputError, match="not a directory"):
        read_all(tmp_path / "file.png" / "x")


def test_a_fifo_swapped_in_after_the_walk_does_not_block_the_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "late.png")
    result: list[BaseException] = []

    def read() -> None:
        try:
            read_all(tmp_path / "late.png")
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            result.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "open_regular blocked on a FIFO"
    assert isinstance(result[0], UnsupportedFormatError)


def test_names_become_text_that_can_be_stored_and_shown() -> None:
    assert source_name(Path(os.fsdecode(b"box/\xff\xfe slip.png"))) == "box/\\xff\\xfe slip.png"
    assert source_name(Path("窗口/投诉.png")) == "窗口/投诉.png"
    assert printable("a\nb\x1b[31mred\u202eevil\x9b") == "a\\nb\\x1b[31mred\\u202eevil\\x9b"
    assert printable("排队\u3000太久 [red]") == "排队\u3000太久 [red]"  # spaces and brackets are printable
    assert printable(os.fsdecode(b"\xff")) == "\\xff"
    # a message quoting such a name (OCR and format errors do) can still be stored
    assert storable(os.fsdecode(b"a\x9b.png") + ": cannot read") == "a\\x9b.png: cannot read"
    assert storable("\ud800 stray") == "\\ud800 stray"
