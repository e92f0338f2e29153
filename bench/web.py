"""Benchmark the reviewer web app over HTTP: a real server (``complaintdesk serve``, uvicorn) and HTTP
clients (httpx2), on 100,000 cases in SQLite and in PostgreSQL.

    flock /tmp/complaintdesk-bench.lock .venv/bin/python -m bench.web [--cases 100000] [--samples 200]
        [--concurrency 20] [--think 1.0] [--scan-pages 200] [--postgres-url ...] [--skip-postgres]
        [--json-out FILE]

Per backend: a fresh database filled through ``storage.create_cases`` (``bench.review.fill``: a third
of the cases need review), a supervisor account, the server started on a free loopback port. Then,
p50/p95/max in milliseconds:

- ``healthz``: the baseline in the same run: the server's floor (no session, no database);
- ``queue page``: ``GET /queue`` (the first 50 cases in queue order), one client (target p95 < 150);
- ``case page``: ``GET /cases/REF`` of a random case, one client (target p95 < 150);
- ``correction POST``: ``POST /cases/REF/labels`` from ``--concurrency`` clients at once (each its own
  session and CSRF token), the department of a random case (target p95 < 100). Twice: each client
  pausing 0.5-1.5 x ``--think`` seconds between posts, as 20 reviewers at work do (the target's
  load); then with no pause, the saturation point, whose latency is queueing and whose throughput is
  reported as requests per second;
- ``during scan``: while ``complaintdesk scan`` OCRs ``--scan-pages`` generated slips into the same
  database beside the server, four clients loop over queue page, case page and a correction until the
  scan ends (target p95 < 300, and no request may fail: every non-2xx/3xx answer or error counts).

Nothing here needs ../shared; the PostgreSQL run uses its own schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

import storage  # noqa: E402
from bench.review import DEPARTMENTS, filled, percentiles, report, run_backends, sample  # noqa: E402
from review.auth import hash_password  # noqa: E402

EXE = str(Path(sys.executable).with_name("complaintdesk"))
PASSWORD = "bench password"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def stats(times: list[float]) -> dict[str, float]:
    return {"n": len(times)} | percentiles(times, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = os.environ | {"COMPLAINTDESK_HOME": str(home), "COMPLAINTDESK_DATABASE_URL": url}
    proc = subprocess.Popen([EXE, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx2.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def client(base: str) -> tuple[httpx2.Client, str]:
    """A signed-in client and its CSRF token."""
    c = httpx2.Client(base_url=base, follow_redirects=False, timeout=30)
    assert c.post("/login", data={"name": "bench", "password": PASSWORD}).status_code == 303
    found = CSRF.search(c.get("/account").text)
    assert found
    return c, found.group(1)


def timed(fn: Callable[[], httpx2.Response], samples: int) -> list[float]:
    def checked() -> None:
        response = fn()
        assert response.status_code < 400, response.status_code

    return sample(checked, samples)


def concurrent_corrections(base: str, refs: list[str], clients: int, per_client: int,
                           think: float = 0.0) -> tuple[list[float], float]:
    """Each client posts ``per_client`` corrections, pausing a random 0.5-1.5 x ``think`` seconds after
    each (a reviewer reads the next case between two keystrokes); latencies in ms and requests/s."""
    sessions = [client(base) for _ in range(clients)]
    barrier = threading.Barrier(clients)

    def work(index: int) -> list[float]:
        c, token = sessions[index]
        rng = random.Random(index)
        barrier.wait()
        out = []
        for _ in range(per_client):
            ref = rng.choice(refs)
            t = time.perf_counter()
            r = c.post(f"/cases/{ref}/labels", data={"csrf": token, "label_set": "department",
                                                       "label": rng.choice(DEPARTMENTS)})
            out.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 303, r.text
            if think:
                time.sleep(think * rng.uniform(0.5, 1.5))
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(work, range(clients)))
    rate = clients * per_client / (time.perf_counter() - started)
    for c, _ in sessions:
        c.close()
    return [t for r in results for t in r], rate


def make_slips(folder: Path, pages: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    font = ImageFont.truetype(str(FONT), 28) if FONT.exists() else ImageFont.load_default()
    for i in range(pages):
        image = Image.new("L", (1240, 600), 255)
        draw = ImageDraw.Draw(image)
        draw.text((60, 80), f"Feedback slip {i}", fill=0, font=font)
        waited = f"I waited {20 + i % 70} minutes at window {i % 30} for my ID card."
        draw.text((60, 180), waited, fill=0, font=font)
        draw.text((60, 260), "The staff were friendly but the queue was far too long.", fill=0, font=font)
        image.save(folder / f"slip-{i:03d}.png", dpi=(300, 300))


def during_scan(base: str, home: Path, url: str, refs: list[str], pages: int) -> dict[str, Any]:
    slips = home / "slips"
    make_slips(slips, pages)
    env = os.environ | {"COMPLAINTDESK_HOME": str(home), "COMPLAINTDESK_DATABASE_URL": url}
    scan = subprocess.Popen([EXE, "scan", "--json", str(slips)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    times: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        c, token = client(base)
        rng = random.Random(100 + index)
        while scan.poll() is None:
            ref = rng.choice(refs)
            kind = rng.randrange(3)
            t = time.perf_counter()
            try:
                if kind == 0:
                    r = c.get("/queue")
                elif kind == 1:
                    r = c.get(f"/cases/{ref}")
                else:
                    r = c.post(f"/cases/{ref}/labels", data={"csrf": token, "label_set": "department",
                                                               "label": rng.choice(DEPARTMENTS)})
                ok = r.status_code < 400
                why = f"{r.status_code} {r.text[:100]}"
            except httpx2.HTTPError as e:
                ok, why = False, repr(e)
            elapsed = (time.perf_counter() - t) * 1000
            with lock:
                times.append(elapsed)
                if not ok:
                    failures.append(why)
        c.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    _, err = scan.communicate()
    return {"scan_seconds": round(time.perf_counter() - t0, 1), "scan_exit": scan.returncode,
            "requests": stats(times) if times else {}, "failures": len(failures),
            "first_failures": failures[:3], "scan_stderr_tail": err.decode(errors="replace")[-300:]}


def run_backend(name: str, url: str, home: Path, args: argparse.Namespace) -> dict[str, Any]:
    db, refs, fill_seconds = filled(url, args.cases)
    with db.session() as s:
        storage.add_user(s, "bench", hash_password(PASSWORD), role="supervisor")
    db.dispose()
    server, base = start_server(home, url)
    try:
        c, _ = client(base)
        rng = random.Random(1)
        out: dict[str, Any] = {"cases": args.cases, "fill_seconds": fill_seconds}
        out["healthz (baseline)"] = stats(timed(lambda: c.get("/healthz"), args.samples))
        out["queue page"] = stats(timed(lambda: c.get("/queue"), args.samples))
        out["case page"] = stats(timed(lambda: c.get(f"/cases/{rng.choice(refs)}"), args.samples))
        per_client = max(1, args.samples * 2 // args.concurrency)
        # the target's load: 20 reviewers at work, each pausing between corrections as people do
        times, rate = concurrent_corrections(base, refs, args.concurrency, per_client, args.think)
        out[f"correction POST x{args.concurrency}, think {args.think:g} s"] = stats(times) | {
            "per_second": round(rate, 1)}
        # and the same clients with no pause at all: the server's saturation throughput, where
        # latency is queueing (20 requests waiting on a 2-core machine), reported beside it
        times, rate = concurrent_corrections(base, refs, args.concurrency, per_client)
        out[f"correction POST x{args.concurrency}, no pause"] = stats(times) | {"per_second": round(rate, 1)}
        c.close()
        if args.scan_pages:
            out["during scan"] = during_scan(base, home, url, refs, args.scan_pages)
        print(json.dumps({name: out}, indent=2), flush=True)
        return {name: out}
    finally:
        server.terminate()
        server.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--scan-pages", type=int, default=200)
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean seconds each correction client pauses between two posts")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    out = run_backends(lambda name, url, home: run_backend(name, url, home, args), args.postgres_url,
                       sqlite=not args.skip_sqlite, postgres=not args.skip_postgres)
    report(out, args.json_out)

if __name__ == "__main__":
    main()
