"""Prometheus metrics, in a registry per app (tests build many apps in one process).

Requests are labelled by route template (``/api/snippets/{snippet_id}``), never by raw
path, so the number of series stays bounded whatever clients send.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("vidsonar_http_requests_total", "HTTP requests answered",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("vidsonar_http_request_seconds", "HTTP request latency",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.searches = Histogram("vidsonar_search_seconds", "Search time in the query layer",
                                  ["kind"], buckets=LATENCY_BUCKETS, registry=r)
        self.query_batch = Histogram("vidsonar_query_batch_size", "Queries encoded per encoder call",
                                     buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.files = Counter("vidsonar_ingest_files_total", "Files the ingest worker finished",
                             ["outcome"], registry=r)
        self.jobs = Gauge("vidsonar_ingest_jobs", "Ingest jobs by status", ["status"], registry=r)
        self.vectors = Gauge("vidsonar_index_vectors", "Vectors in the search index", registry=r)
        self.videos = Gauge("vidsonar_videos", "Videos in the catalog by status", ["status"],
                            registry=r)
        self.upload_bytes = Counter("vidsonar_upload_bytes_total", "Bytes received in uploads",
                                    registry=r)
        # an outage is a reading, not a failed scrape: the counters above say what it cost
        self.reachable = Gauge("vidsonar_reachable", "Whether the server reached a store at the "
                               "last scrape (1) or not (0); while not, the gauges of that store keep "
                               "their last reading", ["store"], registry=r)


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task or body buffering, unlike BaseHTTPMiddleware)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status["code"])).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
