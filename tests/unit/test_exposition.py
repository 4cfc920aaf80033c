"""/metrics with the per-pod gauge rendered once per cycle (adapters/exposition.py).

The oracle is prometheus-client itself: the same figures in a plain labelled `Gauge`,
written by its own encoders and read back by its own parsers, must come out as what
costgov serves, for each content type Prometheus asks for."""

from __future__ import annotations

import gzip
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics import exposition as om
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

from costgov.adapters.exposition import ReplacedGauge, kind_of, render, serve_metrics

PROMETHEUS_ACCEPT = (  # what Prometheus 2.42 sends with every scrape (scrape/scrape.go)
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PODS = {  # (namespace, team, workload): a p5.48xlarge GPU is $55.04 / 8 = $6.88 an hour
    ("ml", "nlp", "train-0"): 6.88,
    ("ml", "nlp", "train-1"): 13.76,  # two of its GPUs
    ("serving", "", 'odd "name"\\x'): 0.8048,  # a g6.xlarge; quotes and a backslash
}
LABELS = ("namespace", "team", "workload")


def _registries() -> tuple[CollectorRegistry, ReplacedGauge, CollectorRegistry]:
    """costgov's (a replaced gauge) and the oracle's (a plain Gauge), the same figures and
    one ordinary counter next to them."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    kept = ReplacedGauge("costgov_hourly_cost_dollars", "Current USD per hour", LABELS, ours)
    plain = Gauge("costgov_hourly_cost_dollars", "Current USD per hour", LABELS, registry=theirs)
    kept.replace(PODS)
    for labels, value in PODS.items():
        plain.labels(*labels).set(value)
    for r in (ours, theirs):
        Counter("costgov_spend_dollars", "USD spent", ["namespace"], registry=r).labels("ml").inc(3)
    return ours, kept, theirs


def _samples(families: Iterator[object]) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for f in families
        for s in f.samples  # type: ignore[attr-defined]
        if not s.name.endswith("_created")  # the counters' creation times differ
    }


ACCEPTS = {
    "none (curl)": None,
    "Prometheus 2.42": PROMETHEUS_ACCEPT,
    "Prometheus 3 (UTF-8 names)": (  # scrape_protocols' default, protobuf left out
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
        "application/openmetrics-text;version=0.0.1;q=0.4,"
        "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
        "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
    ),
    "text 1.0.0, dots": "text/plain;version=1.0.0;escaping=dots",
    "any": "*/*",
}


def _lines(body: bytes) -> list[str]:
    """Every line but the counters' creation times (each registry made its own), sorted:
    HELP, TYPE, samples and EOF compared as they are written."""
    return sorted(line for line in body.decode().splitlines() if "_created" not in line)


@pytest.mark.parametrize("accept", ACCEPTS.values(), ids=ACCEPTS.keys())
def test_what_prometheus_clients_own_encoder_writes_for_each_accept(accept: str | None) -> None:
    ours, kept, theirs = _registries()
    encoder, ctype = choose_encoder(accept or "")
    body, served = render(ours, [kept], accept)
    assert served == ctype
    assert _lines(body) == _lines(encoder(theirs))
    text = body.decode()
    if ctype.startswith("application/openmetrics-text"):
        assert text.count("# EOF") == 1 and text.endswith("# EOF\n")
        # the strict parser rejects a family split in two or a missing EOF
        assert _samples(om_parse(text)) == _samples(om_parse(encoder(theirs).decode()))
    else:
        assert _samples(text_parse(text)) == _samples(text_parse(encoder(theirs).decode()))
    assert 'workload="train-1"} 13.76' in text


def test_a_replacement_is_served_whole_and_the_cache_follows_it() -> None:
    ours, kept, _ = _registries()
    render(ours, [kept], PROMETHEUS_ACCEPT)  # cached
    kept.replace({("ml", "nlp", "train-2"): 6.88})
    text = render(ours, [kept], PROMETHEUS_ACCEPT)[0].decode()
    assert 'workload="train-2"} 6.88' in text and "train-0" not in text
    kept.clear()
    text = render(ours, [kept], None)[0].decode()
    assert "# TYPE costgov_hourly_cost_dollars gauge" in text and "train-2" not in text
    assert ours.get_sample_value("costgov_spend_dollars_total", {"namespace": "ml"}) == 3


def test_renderings_are_kept_per_format_and_escaping_not_per_version() -> None:
    # any client may name a version of its own in Accept: each rendering is the gauge's size
    ours, kept, theirs = _registries()
    for minor in range(20):
        accept = f"application/openmetrics-text;version=1.{minor}.0"
        body, ctype = render(ours, [kept], accept)
        assert f"version=1.{minor}.0" in ctype
        assert _lines(body) == _lines(om.generate_latest(theirs))
    render(ours, [kept], PROMETHEUS_ACCEPT)
    render(ours, [kept], None)
    assert set(kept._rendered) == {(True, "underscores"), (False, "underscores")}


def test_a_replacement_during_a_rendering_is_not_kept_as_the_new_cycles() -> None:
    ours, kept, _ = _registries()
    encoder, ctype = choose_encoder(PROMETHEUS_ACCEPT)
    kind = kind_of(encoder, ctype)

    def replacing(registry: object) -> bytes:
        kept.replace({("ml", "nlp", "train-9"): 6.88})  # the next cycle, mid-rendering
        return encoder(registry)

    first = kept.rendered(kind, replacing).decode()
    assert "train-0" in first and "train-9" not in first  # the cycle it began with, whole
    text = render(ours, [kept], PROMETHEUS_ACCEPT)[0].decode()
    assert 'workload="train-9"} 6.88' in text and "train-0" not in text


def test_labels_must_match_the_label_names() -> None:
    with pytest.raises(ValueError, match="one value per"):
        ReplacedGauge("g", "doc", LABELS).replace({("ml", "nlp"): 1.0})


def test_a_scrape_during_replacements_sees_one_cycle_whole() -> None:
    # each cycle's figures sum to a known total: a half-cleared gauge would not
    ours, kept, _ = _registries()
    cycles = [{("ml", "", f"pod-{c}-{i}"): 1.0 for i in range(200)} for c in range(50)]
    done = threading.Event()

    def replace() -> None:
        for values in cycles:
            kept.replace(values)
        done.set()

    writer = threading.Thread(target=replace)
    writer.start()
    seen = 0
    while not done.is_set() or seen == 0:
        families = text_parse(render(ours, [kept], None)[0].decode())
        gauge = next(f for f in families if f.name == "costgov_hourly_cost_dollars")
        assert len(gauge.samples) in (200, len(PODS))
        seen += 1
    writer.join()


def test_served_over_http_with_gzip_and_names() -> None:
    ours, kept, theirs = _registries()
    server = serve_metrics(0, ours, [kept], addr="127.0.0.1")
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    try:
        ask = urllib.request.Request(url, headers={"Accept": PROMETHEUS_ACCEPT,
                                                   "Accept-Encoding": "gzip"})  # fmt: skip
        with urllib.request.urlopen(ask, timeout=5) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            text = gzip.decompress(r.read()).decode()
        assert _samples(om_parse(text)) == _samples(om_parse(om.generate_latest(theirs).decode()))
        with urllib.request.urlopen(url, timeout=5) as r:  # no Accept-Encoding: not gzipped
            assert r.headers["Content-Encoding"] is None
            assert _lines(r.read()) == _lines(generate_latest(theirs))
        named = f"{url}?name[]=costgov_spend_dollars_total"
        with urllib.request.urlopen(named, timeout=5) as r:
            text = r.read().decode()
        assert "costgov_spend_dollars_total" in text and "hourly" not in text
        with pytest.raises(urllib.error.HTTPError) as posted:  # as prometheus-client answers
            urllib.request.urlopen(urllib.request.Request(url, data=b"x"), timeout=5)
        assert posted.value.code == 405 and posted.value.headers["Allow"] == "OPTIONS,GET"
    finally:
        server.shutdown()
        server.server_close()


def test_an_ipv6_address_is_listened_on_as_prometheus_clients_server_does() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    ours, kept, _ = _registries()
    try:
        server = serve_metrics(0, ours, [kept], addr="::1")
    except OSError as exc:  # a kernel without IPv6 loopback
        pytest.skip(f"no IPv6 loopback: {exc}")
    try:
        assert server.address_family == socket.AF_INET6
        with urllib.request.urlopen(f"http://[::1]:{server.server_port}/", timeout=5) as r:
            assert b'workload="train-0"} 6.88' in r.read()
    finally:
        server.shutdown()
        server.server_close()
