"""``GET /metrics``: the server's counters and the database's backlog, in Prometheus' text format.

Counters and histograms (requests, latencies, the annotation loop) are kept by each server
process. ``qistas serve`` runs prometheus-client's multiprocess mode: each process writes its
values to files in ``QISTAS_HOME/metrics-PORT`` (emptied when the server starts), and
whichever process answers a scrape adds up all of them, so one scrape of the port gives the
whole server's totals however many ``--workers`` it runs. An app built another way keeps its
values in memory (one process, one set).

The gauges are read from the database when scraped: they are the same whichever server
answers. No organization, user or task appears in any metric.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterable, Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from qistas.api.deps import bearer_token
from qistas.api.errors import domain_response
from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read
from qistas.domain.backlog import backlog
from qistas.errors import Unauthorized
from qistas.serving import MULTIPROCESS_DIR

log = logging.getLogger("qistas.metrics")

# The annotation loop answers in milliseconds; exports and imports take seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route matched (404): never the raw path


class Metrics:
    """The counters of one server process; the work routes and ``RequestContext`` move them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("method", "route", "status")
        self.requests = Counter("qistas_http_requests", "HTTP requests answered.", labels, registry=self.registry)
        self.latency = Histogram("qistas_http_request_duration_seconds", "Time to answer an HTTP request.", labels,
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.taken = Counter("qistas_assignments_taken", "Tasks handed to annotators.", registry=self.registry)
        self.submitted = Counter("qistas_answers_submitted", "Answers stored (a repeated submit counts once).",
                                 registry=self.registry)
        self.skipped = Counter("qistas_assignments_skipped", "Skips accepted (a repeated skip of one lease too).",
                               registry=self.registry)
        self.inline_reruns = Counter(
            "qistas_inline_transactions_rerun", "Loop transactions run on the event loop (PostgreSQL) that were "
            "rolled back and run again in a thread, by why.", ("reason",), registry=self.registry)
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def count_inline_rerun(self, reason: str) -> None:
        self.inline_reruns.labels(reason).inc()

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in METHODS else "other", route, f"{status // 100}xx")
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds a key: once per label set
            children = self._children[key] = (self.requests.labels(*key), self.latency.labels(*key))
        children[0].inc()
        children[1].observe(seconds)


class BacklogCollector(Collector):
    """Gauges counted in the database at each scrape (one statement)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("qistas_database_up", "1 when the last scrape could read the database, else 0.")
        try:
            counts = read(self.db, lambda session: backlog(session, now=utcnow()))
        except SQLAlchemyError as exc:
            log.warning("metrics: the database could not be read: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("qistas_leases_active", "Assignments held by annotators, not yet expired.",
                                value=counts.leases_active)
        yield GaugeMetricFamily("qistas_tasks_pending", "Tasks neither completed nor canceled: the queue.",
                                value=counts.tasks_pending)
        yield GaugeMetricFamily("qistas_webhook_deliveries_pending",
                                "Webhook and callback deliveries waiting to be sent or retried (the outbox).",
                                value=counts.deliveries_pending)
        jobs = GaugeMetricFamily("qistas_export_jobs", "Export jobs waiting or being written.", labels=["status"])
        jobs.add_metric(["queued"], counts.export_jobs_queued)
        jobs.add_metric(["running"], counts.export_jobs_running)
        yield jobs


def exposition(metrics: Metrics, db: Database, *, accept: str | None) -> tuple[bytes, str]:
    """What a scrape reads, in the format its Accept header asks for (Prometheus text by default):
    every process's values when multiprocess mode is on, else this one's; then the backlog."""
    registry = CollectorRegistry()
    path = os.environ.get(MULTIPROCESS_DIR)
    if path:
        MultiProcessCollector(registry, path)
    else:
        registry.register(_Forward(metrics.registry))
    registry.register(BacklogCollector(db))
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


def ensure_scraper(request: Request, settings: Settings) -> None:
    expected = settings.metrics_token
    if expected is None:
        return
    given = bearer_token(request)
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("GET /metrics requires the bearer token set in QISTAS_METRICS_TOKEN")


def install(app: FastAPI, settings: Settings, db: Database) -> None:
    metrics: Metrics = app.state.metrics

    # Outside the API's schema, like /healthz: an operator's endpoint, not a customer's.
    @app.get("/metrics", include_in_schema=False)
    def scrape(request: Request) -> Response:
        try:
            ensure_scraper(request, settings)
        except Unauthorized as exc:  # the JSON error shape here too, not the web pages' error page
            return domain_response(exc)
        body, content_type = exposition(metrics, db, accept=request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})
