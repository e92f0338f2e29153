"""Prometheus metrics: what a worker did, and the queue's state read from the database at each scrape.

    complaintdesk_cases_created_total        cases created by this process
    complaintdesk_quarantined_total          inputs quarantined by this process
    complaintdesk_ocr_seconds                time to OCR and store one scanned item (a histogram)
    complaintdesk_queue_up                   1 if the queue's database answered this scrape, else 0
    complaintdesk_queue_depth{state}         jobs queued, running and failed
    complaintdesk_queue_oldest_job_age_seconds  how long the oldest queued job has waited
    complaintdesk_poller_last_success_timestamp_seconds  when a poller last saved a mailbox's progress

Counters are per process (Prometheus adds up the workers); the queue gauges are the same from every
process, read at scrape time. ``serve`` is the worker's endpoint; ``wsgi_app`` is for the web app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import storage
from pipeline.core.errors import ConfigError
from pipeline.core.model import Outcome, OutcomeKind

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


class QueueCollector(Collector):
    """The queue's gauges, read from the database when Prometheus scrapes."""

    def __init__(self, db: storage.Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
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
        if polled is not None:
            yield GaugeMetricFamily("complaintdesk_poller_last_success_timestamp_seconds",
                                    "When a mail poller last saved a mailbox's progress (UNIX time).",
                                    value=polled)


def registry(db: storage.Database) -> CollectorRegistry:
    """This process's counters and the queue's gauges, in a registry of their own."""
    reg = CollectorRegistry(auto_describe=True)
    for metric in (CASES_CREATED, QUARANTINED, OCR_SECONDS):
        reg.register(metric)
    reg.register(QueueCollector(db))
    return reg


def wsgi_app(db: storage.Database) -> Callable[..., Any]:
    """A WSGI app serving the metrics, for the web app to mount (e.g. at ``/metrics``)."""
    return make_wsgi_app(registry(db))


def serve(db: storage.Database, port: int, addr: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``addr:port`` from a background thread (the worker's endpoint).

    Raises:
        ConfigError: the address cannot be listened on (the port is taken: each worker needs its own).
    """
    try:
        start_http_server(port, addr=addr, registry=registry(db))
    except OSError as e:
        raise ConfigError(f"cannot serve metrics on {addr}:{port} ({e.strerror or e}); give each worker "
                          "its own --metrics-port") from e
