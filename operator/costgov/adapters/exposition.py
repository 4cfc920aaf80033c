"""The operator's /metrics endpoint, with the per-pod gauge rendered once per cycle.

`costgov_hourly_cost_dollars` has a series per priced GPU pod: 8,000 at 10,000 pods, most
of the endpoint's 780 KB. prometheus-client builds and formats every sample at every
scrape, about 0.2 s of CPU each time (and of the GIL the event loop needs), although the
figures change once per cycle. `ReplacedGauge` holds that gauge: each cycle replaces its
values whole (a scrape never sees it half cleared and half filled), and `serve_metrics`
renders it once per cycle and format (and name escaping), the rest of the registry at
every scrape.
"""

from __future__ import annotations

import gzip
import socket
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

__all__ = ["ReplacedGauge", "kind_of", "render", "serve_metrics"]

Labels = tuple[str, ...]
Encoder = Callable[[Any], bytes]
Kind = tuple[bool, str]
"""What a rendering depends on: OpenMetrics or not, and how names are escaped. Not the
OpenMetrics version a client names (any string): it changes only native histograms."""
_EOF = b"# EOF\n"  # OpenMetrics' last line, once per exposition
_OPENMETRICS = "application/openmetrics-text"


def kind_of(encoder: Encoder, content_type: str) -> Kind:
    escaping = getattr(encoder, "keywords", {}).get("escaping", "underscores")
    return content_type.startswith(_OPENMETRICS), str(escaping)


class ReplacedGauge(Collector):
    """A labelled gauge whose series are replaced all at once, and whose rendering is kept
    until the next replacement (per format and escaping: at most 8)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name, self._doc, self._labelnames = name, documentation, tuple(labelnames)
        self._lock = threading.Lock()  # held for moments only: `replace` runs on the loop
        self._rendering = threading.Lock()  # scrapes after a replacement render it once
        self._values: dict[Labels, float] = {}
        self._family: Metric | None = None  # built at the first read after a replacement
        self._rendered: dict[Kind, bytes] = {}
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

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self._doc, labels=self._labelnames)]

    def collect(self) -> Iterable[Metric]:
        return [self._current()[0]]

    def rendered(self, kind: Kind, encoder: Encoder) -> bytes:
        """This gauge alone in `encoder`'s format (without OpenMetrics' `# EOF`), rendered
        once per replacement and `kind`; one cycle's series whole, whatever a replacement
        does meanwhile."""
        with self._rendering:
            family, kept = self._current()
            text = kept.get(kind)
            if text is None:
                text = encoder(_Only(family)).removesuffix(_EOF)
                with self._lock:
                    if self._family is family:  # not replaced meanwhile
                        self._rendered[kind] = text
            return text

    def _current(self) -> tuple[Metric, dict[Kind, bytes]]:
        with self._lock:
            family, values, kept = self._family, self._values, self._rendered
        if family is None:  # built outside the lock: a replacement never waits for it
            family = GaugeMetricFamily(self.name, self._doc, labels=self._labelnames)
            for labels, value in values.items():
                family.add_metric(labels, value)
            with self._lock:
                if self._values is values and self._family is None:
                    self._family = family
        return family, kept


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
    kept, kind = list(kept), kind_of(encoder, content_type)
    body = encoder(_Without(registry, {g.name for g in kept}))
    parts = [body.removesuffix(_EOF), *(g.rendered(kind, encoder) for g in kept)]
    return b"".join(parts) + (_EOF if kind[0] else b""), content_type


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


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
            body = gzip.compress(body, compresslevel=1)  # 8,000 pods: 3 ms, 66 KB (6: 8 ms, 53 KB)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    found = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, *_, where = found[0]  # as prometheus-client's server: "::" listens on IPv6
    server_class = _Server6 if family == socket.AF_INET6 else _Server
    server = make_server(str(where[0]), port, app, server_class, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="costgov metrics", daemon=True).start()
    return server
