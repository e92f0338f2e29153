"""Every hostile input family of issue 10 thrown at the real CLI: is anything lost, duplicated or crashed?

Each family is generated deterministically from ``--seed`` into its own folder and handed to the
console script in a temporary home (``init`` first): e-mail families through ``mail import --json``,
file families through ``scan --json``. Then every folder is submitted again, which must make no new
case. Per family the table shows how many inputs were tried, what became of them (from the JSON
lines), and, from the SQLite database (``cases``, ``quarantine``, ``ignored_messages``,
``intake_items``):

- lost: an input with no case, no quarantine record, no ignored record and no skipped/ignored line;
- duplicated: an input with more than one case (re-submission: any new case);
- crashes: a run that exits non-zero other than 3 (the documented "not everything was taken"), or
  prints a traceback;
- peak memory: the largest RSS of the CLI's whole process tree (sampled with bench/memory.py's
  ``run_sampled``).

    .venv/bin/python bench/hostile.py [--seed 10] [--json PATH] [--keep DIR]

Exits 1 if anything was lost, duplicated or crashed, or the peak passed 1.5 GB.

Results, 2026-12-01 06:00 UTC, 2 shared cores, seed 10, default settings (about 90 s in all); the
first runs found two quadratic regexes (normalize_text, the e-mail field) that held ``mail import``
for minutes on a 200 KB header pushed into the body:

    input family          tried  outcomes                         lost  dup  crashes  peak tree RSS
    e-mail headers           40  40 created                          0    0        0         167 MB
    MIME structure           13  13 created                          0    0        0         526 MB
    file names               16  16 created                          0    0        0         566 MB
    folder entries           12  1 created, 11 skipped               0    0        0         383 MB
    image headers            13  1 created, 12 quarantined           0    0        0         670 MB
    re-submission (all)      94  71 matched, 12 quar., 11 skipped    0    0        0         185 MB
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memory import EXE, INPUTS, LIMIT_BYTES, Sampled, run_sampled  # noqa: E402

from ocr.synth import CLEAN, make_slip  # noqa: E402
from tests.ocr_fixtures import png_bytes, png_declaring  # noqa: E402

OK_EXITS = (0, 3)
RUN_TIMEOUT = 600.0
SETPRIV = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@dataclass
class Input:
    """One thing handed to the CLI: its entry name in the folder and its bytes (None: not readable)."""

    name: str
    data: bytes | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else ""


@dataclass
class Family:
    name: str
    command: str  # "scan" or "mail"
    folder: Path
    inputs: list[Input] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    peak: int = 0
    seconds: float = 0.0


# -- generators -----------------------------------------------------------------------------------


def _complaint_text(rng: random.Random, n: int) -> str:
    places = ["window 3", "the lift", "the north entrance", "the car park", "counter 7", "the ramp"]
    problems = ["was closed all morning", "is broken again", "had a queue of two hours", "is dirty"]
    return f"Complaint {n}: {rng.choice(places)} {rng.choice(problems)}. Ticket {rng.randrange(10**6)}."


def _raw_message(headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    return b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"\r\n" + body


def gen_headers(rng: random.Random, folder: Path, n: int) -> list[Input]:
    """.eml files with hostile headers: bad RFC 2047, NULs, CR/LF in display names, long lines, charsets."""
    evil: list[Callable[[int], tuple[bytes, bytes]]] = [
        lambda i: (b"Subject", b"=?utf-8?B?a?="),
        lambda i: (b"Subject", b"=?utf-8?Q?=ZZ=?= =?x-unknown-9?B?SGVsbG8=?="),
        lambda i: (b"From", b"=?utf-8?B?bGluZTENCkJjYzogZXZpbEBleGFtcGxlLmNvbQ==?= <c%d@example.org>" % i),
        lambda i: (b"From", b"\"line1\r\nBcc: evil@example.com\" <c%d@example.org>" % i),
        lambda i: (b"Subject", b"nul\x00in\x00the\x00subject %d" % i),
        lambda i: (b"Subject", b"x" * 200_000),
        lambda i: (b"Subject", b"=?koi8-zz?Q?=E0=E1?= =?utf-8?B?" + b"A" * 5001 + b"?="),
        lambda i: (b"Content-Type", b"text/plain; charset=\"no-such-charset\""),
        lambda i: (b"Content-Type", b"text/plain; charset=utf-7"),
        lambda i: (b"From", b"\xff\xfe\x00<bad@\xe9x.org>"),
        lambda i: (b"Date", b"Mon, 99 Foo 20261 99:99:99 +9999"),
        lambda i: (b"Message-ID", b"<" + b"\x1b[31m" * 50 + b"[/]@x>"),
        lambda i: (b"X-Folded", b"a\r\n\r\nb"),  # an early end of headers
        lambda i: (b"To", b"=?utf-8?B?" + base64.b64encode(b"\r\n" * 10) + b"?= <d@x.org>"),
    ]
    inputs = []
    for i in range(n):
        headers = [(b"From", b"Citizen %d <c%d@example.org>" % (i, i)), (b"To", b"desk@center.example"),
                   (b"Subject", b"Complaint %d" % i), (b"Message-ID", b"<h%d@bench.example>" % i),
                   (b"Date", b"Tue, 1 Dec 2026 09:00:00 +0000")]
        for make in rng.sample(evil, rng.randint(1, 4)):
            name, value = make(i)
            headers = [h for h in headers if h[0] != name] if rng.random() < 0.5 else headers
            headers.append((name, value))
        rng.shuffle(headers)
        inputs.append(Input(f"h{i:03d}.eml", _raw_message(headers, _complaint_text(rng, i).encode())))
    return _write(folder, inputs)


def gen_mime(rng: random.Random, folder: Path, n: int) -> list[Input]:
    """Broken multiparts, truncated base64, wrong transfer encodings, many tiny image attachments."""
    def head(i: int, ctype: bytes) -> list[tuple[bytes, bytes]]:
        return [(b"From", b"Citizen %d <m%d@example.org>" % (i, i)), (b"Subject", b"MIME %d" % i),
                (b"Message-ID", b"<m%d@bench.example>" % i), (b"MIME-Version", b"1.0"),
                (b"Content-Type", ctype)]

    def broken_multipart(i: int) -> bytes:
        body = (b"--b\r\nContent-Type: text/plain\r\n\r\n" + _complaint_text(rng, i).encode()
                + b"\r\n--b\r\nContent-Type: image/png\r\n")  # no closing boundary, no part body
        return _raw_message(head(i, b"multipart/mixed; boundary=\"b\""), body)

    def no_boundary(i: int) -> bytes:
        return _raw_message(head(i, b"multipart/mixed"), _complaint_text(rng, i).encode())

    def truncated_base64(i: int) -> bytes:
        text = base64.b64encode(_complaint_text(rng, i).encode() * 3)
        body = (b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + text[: len(text) * 2 // 3 + 1] + b"\r\n--b\r\nContent-Type: image/png\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(png_bytes(40, 40))[:37])
        return _raw_message(head(i, b"multipart/mixed; boundary=\"b\""), body)

    def wrong_encoding(i: int) -> bytes:
        enc = rng.choice([b"x-uuencode", b"base64", b"quoted-printable", b"8bit", b"binary", b"gzip"])
        body = b"\xff\xfe" + _complaint_text(rng, i).encode("utf-16-le") if enc == b"binary" else (
            _complaint_text(rng, i).encode() + b" =ZZ =\r\n")
        headers = [*head(i, b"text/plain; charset=utf-8"), (b"Content-Transfer-Encoding", enc)]
        return _raw_message(headers, body)

    def nested(i: int) -> bytes:
        depth = 60
        body = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n" % (k, k + 1)
                        for k in range(depth))
        body += b"--b%d\r\nContent-Type: text/plain\r\n\r\n" % depth + _complaint_text(rng, i).encode()
        return _raw_message(head(i, b"multipart/mixed; boundary=\"b0\""), body)

    def with_text(i: int, subject: str) -> EmailMessage:
        m = EmailMessage()
        m["From"] = f"Citizen {i} <m{i}@example.org>"
        m["Subject"] = f"MIME {i}: {subject}"
        m["Message-ID"] = f"<m{i}@bench.example>"
        m.set_content(_complaint_text(rng, i))
        return m

    def many_images(i: int) -> bytes:
        m = with_text(i, "photos")
        for k in range(rng.choice([30, 120, 300])):
            m.add_attachment(png_bytes(8 + k % 24, 8), maintype="image", subtype="png", filename=f"t{k}.png")
        return m.as_bytes()

    def bad_image(i: int) -> bytes:
        m = with_text(i, "a bomb")
        m.add_attachment(png_declaring(60000, 60000), maintype="image", subtype="png", filename="bomb.png")
        m.add_attachment(b"%PDF-1.4\n1 0 obj <<", maintype="application", subtype="pdf", filename="cut.pdf")
        return m.as_bytes()

    makers = [broken_multipart, no_boundary, truncated_base64, wrong_encoding, nested, bad_image]
    inputs = [Input(f"m{i:03d}.eml", makers[i % len(makers)](i)) for i in range(n)]
    inputs.append(Input(f"m{n:03d}.eml", many_images(n)))
    return _write(folder, inputs)


def gen_names(rng: random.Random, folder: Path, n: int) -> list[Input]:
    """Valid slips under hostile names: markup, ESC, newlines, non-UTF-8 bytes, leading dashes.

    A name cannot hold "/", so no "[/]": the markup is opening tags.
    """
    names = [b"[red]x.png", b"[bold][link=x]y.png", b"\x1b[2J\x1b[31mred.png", b"line1\nline2.png",
             b"cr\rret.png",
             b"\xff\xfe-not-utf8.png", b"caf\xe9.jpg", b"--help.png", b"-rf.png", b"tab\there.png",
             b"\xe2\x80\xaeevil\xe2\x80\xacgnp.png", b"%s%n%x.png", b"a" * 200 + b".png",
             b"\xf0\x9f\x92\xa9.png", b"  spaced  .png", b"back\\slash.png"]
    rng.shuffle(names)
    inputs = []
    for i, raw in enumerate(names[:n]):
        data = make_slip(_complaint_text(rng, i), CLEAN, seed=rng.randrange(10**6))
        (folder / os.fsdecode(raw)).write_bytes(data)
        inputs.append(Input(os.fsdecode(raw), data))
    return inputs


def gen_entries(rng: random.Random, folder: Path, outside: Path) -> list[Input]:
    """Entries not to take: unreadable files and folders, FIFOs, link loops, links out, .docx/.txt."""
    outside.mkdir(parents=True, exist_ok=True)
    secret = outside / "shadow"
    secret.write_bytes(b"root:not-for-the-blob-store\n")
    good = make_slip(_complaint_text(rng, 900), CLEAN, seed=rng.randrange(10**6))
    locked = make_slip(_complaint_text(rng, 901), CLEAN, seed=rng.randrange(10**6))
    inputs = [Input("good.png", good), Input("locked.png", None), Input("locked-folder", None),
              Input("letter.docx", b"PK\x03\x04 a word document"), Input("notes.txt", b"call back Mr Li\n"),
              Input("loop.png", None), Input("loop-a.jpg", None), Input("loop-b.jpg.lnk", None),
              Input("out.png", None),
              Input("out-folder", None), Input("pipe.png", None), Input("dangling.png", None)]
    _write(folder, [i for i in inputs if i.data is not None and i.name != "locked.png"])
    (folder / "locked.png").write_bytes(locked)
    (folder / "locked-folder").mkdir()
    (folder / "locked-folder" / "inside.png").write_bytes(locked)
    (folder / "loop.png").symlink_to("loop.png")
    (folder / "loop-a.jpg").symlink_to("loop-b.jpg.lnk")
    (folder / "loop-b.jpg.lnk").symlink_to("loop-a.jpg")
    (folder / "out.png").symlink_to(secret)
    (folder / "out-folder").symlink_to(outside)
    (folder / "dangling.png").symlink_to(outside / "no-such-file")
    os.mkfifo(folder / "pipe.png")
    os.chmod(folder / "locked.png", 0)
    os.chmod(folder / "locked-folder", 0)
    return inputs


def gen_images(rng: random.Random, folder: Path) -> list[Input]:
    """Truncated and corrupt PNG/JPEG/TIFF/PDF, decompression-bomb declarations, an 8900x8900 PNG."""
    slip = make_slip(_complaint_text(rng, 700), CLEAN, seed=rng.randrange(10**6))
    jpeg = _small_jpeg(rng)
    tiff = INPUTS["tiff-500-pages"][1]()
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    flipped = bytearray(slip)
    for _ in range(40):
        flipped[rng.randrange(100, len(flipped))] ^= 0xFF
    inputs = [
        Input("truncated.png", slip[: len(slip) // 3]),
        Input("header-only.png", slip[:33]),
        Input("bitflips.png", bytes(flipped)),
        Input("truncated.jpg", jpeg[: len(jpeg) // 2]),
        Input("soi-only.jpg", b"\xff\xd8\xff\xe0" + bytes(rng.randrange(256) for _ in range(64))),
        Input("truncated.tif", tiff[: len(tiff) // 4]),
        Input("bad-ifd.tif", b"II*\x00\xff\xff\xff\x7f" + b"\x00" * 64),
        Input("cut.pdf", pdf),
        Input("not-a.pdf", b"%PDF-" + bytes(rng.randrange(256) for _ in range(500))),
        Input("bomb-60000.png", png_declaring(60000, 60000)),
        Input("bomb-9500.png", png_declaring(9500, 9500)),
        Input("empty.png", b""),
        Input("huge-8900.png", INPUTS["png-8900-gray"][1]()),
    ]
    return _write(folder, inputs)


def _small_jpeg(rng: random.Random) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (rng.randrange(256), 200, 200)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def _write(folder: Path, inputs: list[Input]) -> list[Input]:
    for item in inputs:
        if item.data is not None:
            (folder / item.name).write_bytes(item.data)
    return inputs


# -- running and accounting ---------------------------------------------------------------------------


def run_cli(family: Family, env: dict[str, str], *args: str,
            privileged: bool = True) -> tuple[Sampled, list[dict]]:
    prefix = [] if privileged or os.geteuid() != 0 else SETPRIV
    ran = run_sampled([*prefix, EXE, *args], env, timeout=RUN_TIMEOUT)
    family.peak = max(family.peak, ran.peak)
    family.seconds += ran.seconds
    if ran.code not in OK_EXITS or "Traceback" in ran.err:
        last = ran.err.strip().splitlines()[-1] if ran.err.strip() else ""
        family.crashes.append(f"{' '.join(args[:2])}: exit {ran.code}: {last[:120]}")
    rows: list[dict] = []
    for line in ran.out.splitlines() if "--json" in args else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            family.crashes.append(f"not JSON on stdout: {line[:80]!r}")
    return ran, rows


def submit(family: Family, env: dict[str, str]) -> list[dict]:
    if family.command == "mail":
        _, rows = run_cli(family, env, "mail", "import", str(family.folder), "--json")
    else:
        # without the capabilities that let root read any file, so mode 000 means something
        _, rows = run_cli(family, env, "scan", str(family.folder), "--json", privileged=False)
    return rows


def account(family: Family, rows: list[dict], db: Path) -> None:
    """Fill the family's outcomes, lost and duplicated from its JSON lines and the database."""
    family.outcomes.update(str(r.get("outcome")) for r in rows)
    said = {(str(r.get("outcome")), _entry(str(r.get("source", "")), family.folder)) for r in rows}
    with sqlite3.connect(db) as con:
        for item in family.inputs:
            sha = item.sha256
            cases = _count(con, "cases", sha)
            held = _count(con, "quarantine", sha) + _count(con, "ignored_messages", sha)
            reported = any(kind in ("skipped", "ignored") and entry == item.name for kind, entry in said)
            if cases > 1:
                family.duplicated.append(item.name)
            if not cases and not held and not reported:
                family.lost.append(item.name)


def _entry(source: str, folder: Path) -> str:
    """The folder entry a scan's source names (its first component below the folder)."""
    try:
        return Path(source).relative_to(folder).parts[0]
    except (ValueError, IndexError):
        return Path(source).name


def _count(con: sqlite3.Connection, table: str, sha: str) -> int:
    if not sha:
        return 0
    return int(con.execute(f"SELECT count(*) FROM {table} WHERE sha256 = ?", (sha,)).fetchone()[0])  # noqa: S608


def total_cases(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT count(*) FROM cases").fetchone()[0])


def table(families: list[Family]) -> Table:
    t = Table(title="hostile input families through the real CLI")
    for column in ("input family", "tried", "outcomes", "lost", "duplicated", "crashes", "peak tree RSS",
                   "seconds"):
        t.add_column(column, justify="right" if column not in ("input family", "outcomes") else "left")
    for f in families:
        outcomes = ", ".join(f"{n} {k}" for k, n in sorted(f.outcomes.items()))
        t.add_row(f.name, str(len(f.inputs)), outcomes, str(len(f.lost)), str(len(f.duplicated)),
                  str(len(f.crashes)), f"{f.peak / 2**20:,.0f} MB", f"{f.seconds:.0f}")
    return t


def as_json(families: list[Family]) -> list[dict]:
    return [{"family": f.name, "tried": len(f.inputs), "outcomes": dict(f.outcomes), "lost": f.lost,
             "duplicated": f.duplicated, "crashes": f.crashes, "peak_rss_bytes": f.peak,
             "seconds": round(f.seconds, 1)} for f in families]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--messages", type=int, default=40, help="e-mails with hostile headers")
    parser.add_argument("--json", type=Path, dest="json_path", help="Also write the table as JSON here.")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cd-hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env["COMPLAINTDESK_HOME"] = str(home)
    rng = random.Random(args.seed)
    console = Console(width=140)
    try:
        setup = Family("init", "init", work)
        run_cli(setup, env, "init")
        if setup.crashes:
            console.print(setup.crashes, markup=False)
            return 1
        db = home / "complaintdesk.db"
        families = []
        plan: list[tuple[str, str, Callable[[Path], list[Input]]]] = [
            ("e-mail headers", "mail", lambda d: gen_headers(rng, d, args.messages)),
            ("MIME structure", "mail", lambda d: gen_mime(rng, d, 12)),
            ("file names", "scan", lambda d: gen_names(rng, d, 16)),
            ("folder entries", "scan", lambda d: gen_entries(rng, d, work / "outside")),
            ("image headers", "scan", lambda d: gen_images(rng, d)),
        ]
        for n, (name, command, make) in enumerate(plan):
            family = Family(name, command, work / f"family-{n}")
            family.folder.mkdir()
            family.inputs = make(family.folder)
            account(family, submit(family, env), db)
            families.append(family)
            console.print(f"{name}: {len(family.inputs)} tried, {family.seconds:.0f} s", markup=False)
        again = Family("re-submission (all of the above)", "again", work)
        before = total_cases(db)
        for family in families:
            again.inputs += family.inputs
            rows = _resubmit(family, again, env)
            again.outcomes.update(str(r.get("outcome")) for r in rows)
        again.duplicated = [f"{total_cases(db) - before} new case(s)"] if total_cases(db) > before else []
        families.append(again)
    finally:
        for sub in work.rglob("*"):  # give locked folders their modes back so they can be removed
            if sub.is_dir() and not sub.is_symlink():
                os.chmod(sub, 0o755)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    console.print(table(families))
    for f in families:
        for what, items in (("lost", f.lost), ("duplicated", f.duplicated), ("crash", f.crashes)):
            for item in items:
                console.print(f"{f.name}: {what}: {item!r}", markup=False)
    if args.json_path:
        args.json_path.write_text(json.dumps(as_json(families), indent=2, ensure_ascii=False) + "\n")
    peak = max(f.peak for f in families)
    bad = any(f.lost or f.duplicated or f.crashes for f in families) or peak >= LIMIT_BYTES
    return 1 if bad else 0


def _resubmit(family: Family, again: Family, env: dict[str, str]) -> list[dict]:
    """Submit a family's folder again, charging the run (crashes, memory, time) to ``again``."""
    shadow = Family(family.name, family.command, family.folder)
    rows = submit(shadow, env)
    again.crashes += [f"{family.name}: {c}" for c in shadow.crashes]
    again.peak = max(again.peak, shadow.peak)
    again.seconds += shadow.seconds
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
