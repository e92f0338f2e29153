"""Prometheus metrics: what a worker did, and the queue's state read from the database at each scrape.

    complaintdesk_cases_created_total        cases created by this process
    complaintdesk_quarantined_total          inputs quarantined by this process
    complaintdesk_ocr_seconds                time to OCR and store one scanned item (a histogram)
    complaintdesk_queue_up                   1 if the queue's database answered this scrape, else 0
    complaintdesk_queue_depth{state}         jobs queued, running and failed
    complaintdesk_queue_oldest_job_age_seconds  how long the oldest queued job has waited
    complaintdesk_poller_last_success_timestamp_seconds  when a poller last saved a mailbox's progress

Counters are per process (Prometheus adds up the workers and web apps); the queue gauges are the same
from every process, read at scrape time, and left out where there is no queue (``queue=False``: the
web app on the embedded default), so a deployment without one shows no queue "down". ``serve`` is the
one endpoint, on a port of its own, for the worker and for the web app (``--metrics-port``): the web
app's own routes all need a session (but sign-in, ``/static`` and ``/healthz``), and Prometheus has none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import storage
from pipeline.core.errors import ConfigError
from pipeline.core.model import Channel, Outcome, OutcomeKind

log = logging.getLogger(__name__)

CASES_CREATED = Counter("complaintdesk_cases_created", "Cases created by this process.", registry=None)
QUARANTINED = Counter("complaintdesk_quarantined", "Inputs quarantined by this process.", registry=None)
OCR_SECONDS = Histogram("complaintdesk_ocr_seconds", "Seconds to OCR, classify and store one scanned item.",
                        buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300), registry=None)


def record(outcome: Outcome, seconds: float | None = None) -> None:
    """Count one processed item (``seconds``: how long its OCR and storing took, for scans)."""
    if outcome.kind is OutcomeKind.created:
        CASES_CREATED.inc()
    elif outcome.kind is OutcomeKind.quarantined:
        QUARANTINED.inc()
    if seconds is not None:
        OCR_SECONDS.observe(seconds)


def record_batch(outcomes: Iterable[Outcome]) -> Iterator[Outcome]:
    """Count each outcome of a batch (``intake.process_many``) as it comes, passing it on.

    The batch's OCR pool reads several scans at once, so one item's own time is not known: each
    scanned item is given the seconds since the batch's previous item finished (the first, since the
    batch began), which add up to the batch's time. The further slips of one scan count as cases
    but add no time.
    """
    last = time.monotonic()
    timed: set[int | None] = set()
    for outcome in outcomes:
        seconds = None
        if outcome.source.channel is Channel.slip and outcome.intake_id not in timed:
            now = time.monotonic()
            seconds, last = now - last, now
            timed.add(outcome.intake_id)
        record(outcome, seconds)
        yield outcome


class QueueCollector(Collector):
    """The queue's gauges (``queue=False``: only the poller's), read from the database at each scrape."""

    def __init__(self, db: storage.Database, *, queue: bool = True) -> None:
        self.db = db
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not self.queue:
            yield from self._poller()
            return
        up = GaugeMetricFamily("complaintdesk_queue_up", "1 if the queue's database answered this scrape.")
        try:
            with self.db.reader() as session:
                counts = storage.queue.counts(session)
                polled = storage.queue.poller_last_success(session)
        except storage.StorageError as e:
            log.warning("metrics: the queue's database did not answer: %s", e)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("complaintdesk_queue_depth", "Jobs on the queue by state.",
                                  labels=["state"])
        for state in ("queued", "running", "failed"):
            depth.add_metric([state], getattr(counts, state))
        yield depth
        yield GaugeMetricFamily("complaintdesk_queue_oldest_job_age_seconds",
                                "Seconds the oldest queued job has waited.", value=counts.oldest_age)
        yield from _poller_gauge(polled)

    def _poller(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.db.reader() as session:
                polled = storage.queue.poller_last_success(session)
        except storage.StorageError as e:
            log.warning("metrics: the database did not answer: %s", e)
            return
        yield from _poller_gauge(polled)


def _poller_gauge(polled: float | None) -> Iterator[GaugeMetricFamily]:
    if polled is not None:
        yield GaugeMetricFamily("complaintdesk_poller_last_success_timestamp_seconds",
                                "When a mail poller last saved a mailbox's progress (UNIX time).",
                                value=polled)


def registry(db: storage.Database, *, queue: bool = True) -> CollectorRegistry:
    """This process's counters and the queue's gauges (with ``queue``), in a registry of their own."""
    reg = CollectorRegistry(auto_describe=True)
    for metric in (CASES_CREATED, QUARANTINED, OCR_SECONDS):
        reg.register(metric)
    reg.register(QueueCollector(db, queue=queue))
    return reg


def serve(db: storage.Database, port: int, addr: str = "127.0.0.1", *, queue: bool = True) -> None:
    """Serve ``/metrics`` on ``addr:port`` from a background thread (``worker`` and ``serve``).

    ``queue``: whether there is a task queue whose gauges to read (``COMPLAINTDESK_QUEUE=postgres``).

    Raises:
        ConfigError: the address cannot be listened on (the port is taken: each process needs its own).
    """
    try:
        start_http_server(port, addr=addr, registry=registry(db, queue=queue))
    except OSError as e:
        raise ConfigError(f"cannot serve metrics on {addr}:{port} ({e.strerror or e}); give each worker "
                          "and web app its own --metrics-port") from e
