"""The operator's /metrics endpoint, with the per-pod gauge rendered once per cycle.

`costgov_hourly_cost_dollars` has a series per priced GPU pod: 8,000 at 10,000 pods, most
of the endpoint's 780 KB. prometheus-client builds and formats every sample at every
scrape, about 0.2 s of CPU each time (and of the GIL the event loop needs), although the
figures change once per cycle. `ReplacedGauge` holds that gauge: each cycle replaces its
values whole (a scrape never sees it half cleared and half filled), and `serve_metrics`
renders it once per cycle and content type, the rest of the registry at every scrape.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["KEPT_TYPES", "ReplacedGauge", "render", "serve_metrics"]

Labels = tuple[str, ...]
Encoder = Callable[[Any], bytes]
_EOF = b"# EOF\n"  # OpenMetrics' last line, once per exposition
KEPT_TYPES = 4
"""Content types rendered and kept per replacement: a client can name any version in its
`Accept` header, and each rendering is as large as the gauge (750 KB at 8,000 pods)."""


class ReplacedGauge(Collector):
    """A labelled gauge whose series are replaced all at once, and whose rendering is kept
    until the next replacement (per content type)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name, self._doc, self._labelnames = name, documentation, tuple(labelnames)
        self._lock = threading.Lock()
        self._values: dict[Labels, float] = {}
        self._family: Metric | None = None  # built at the first read after a replacement
        self._rendered: dict[str, bytes] = {}
        if registry is not None:
            registry.register(self)

    def replace(self, values: Mapping[Labels, float]) -> None:
        """The series from now on: exactly `values` (label values in `labelnames` order)."""
        for labels in values:
            if len(labels) != len(self._labelnames):
                raise ValueError(f"{self.name}: {labels!r} is not one value per {self._labelnames}")
        fresh = dict(values)
        with self._lock:
            self._values, self._family, self._rendered = fresh, None, {}

    def clear(self) -> None:
        self.replace({})

    def values(self) -> dict[Labels, float]:
        with self._lock:
            return dict(self._values)

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self._doc, labels=self._labelnames)]

    def collect(self) -> Iterable[Metric]:
        return [self._current()[0]]

    def rendered(self, content_type: str, encoder: Encoder) -> bytes:
        """This gauge alone in `encoder`'s format (without OpenMetrics' `# EOF`), rendered
        once per replacement and content type."""
        family, cache = self._current()
        text = cache.get(content_type)
        if text is None:
            text = encoder(_Only(family)).removesuffix(_EOF)
            with self._lock:
                fits = len(self._rendered) < KEPT_TYPES
                if self._family is family and fits:  # not replaced meanwhile
                    self._rendered[content_type] = text
        return text

    def _current(self) -> tuple[Metric, dict[str, bytes]]:
        with self._lock:
            if self._family is None:
                family = GaugeMetricFamily(self.name, self._doc, labels=self._labelnames)
                for labels, value in self._values.items():
                    family.add_metric(labels, value)
                self._family = family
            return self._family, self._rendered


class _Only:
    def __init__(self, family: Metric) -> None:
        self.family = family

    def collect(self) -> Iterator[Metric]:
        yield self.family


class _Without:
    """A registry's families but the kept gauges' (those are rendered from their cache)."""

    def __init__(self, registry: CollectorRegistry, names: set[str]) -> None:
        self.registry, self.names = registry, names

    def collect(self) -> Iterator[Metric]:
        return (m for m in self.registry.collect() if m.name not in self.names)


def render(
    registry: CollectorRegistry, kept: Iterable[ReplacedGauge], accept: str | None
) -> tuple[bytes, str]:
    """The whole exposition for an `Accept` header, as prometheus-client would write it,
    the kept gauges from their cache. Returns (body, content type)."""
    encoder, content_type = choose_encoder(accept or "")
    kept = list(kept)
    body = encoder(_Without(registry, {g.name for g in kept}))
    openmetrics = body.endswith(_EOF)
    parts = [body.removesuffix(_EOF), *(g.rendered(content_type, encoder) for g in kept)]
    return b"".join(parts) + (_EOF if openmetrics else b""), content_type


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (as prometheus-client's own server)."""


def serve_metrics(
    port: int, registry: CollectorRegistry, kept: Iterable[ReplacedGauge], addr: str = "0.0.0.0"
) -> WSGIServer:
    """Serve /metrics in a daemon thread. `?name[]=` and anything but GET go through
    prometheus-client's own app (a named few metrics cost nothing to render)."""
    kept, standard = list(kept), make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        named = "name[]" in parse_qs(environ.get("QUERY_STRING", ""))
        path = environ.get("PATH_INFO")
        if environ.get("REQUEST_METHOD") != "GET" or named or path == "/favicon.ico":
            return list(standard(environ, start_response))
        body, content_type = render(registry, kept, environ.get("HTTP_ACCEPT"))
        headers = [("Content-Type", content_type)]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            body = gzip.compress(body, compresslevel=6)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    server = make_server(addr, port, app, _Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="costgov metrics", daemon=True).start()
    return server
