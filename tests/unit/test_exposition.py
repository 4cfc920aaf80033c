"""/metrics with the per-pod gauge rendered once per cycle (adapters/exposition.py).

The oracle is prometheus-client itself: the same figures in a plain labelled `Gauge`,
written by its own encoders and read back by its own parsers, must come out as what
costgov serves, for each content type Prometheus asks for."""

from __future__ import annotations

import gzip
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.openmetrics import exposition as om
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

from costgov.adapters.exposition import KEPT_TYPES, ReplacedGauge, render, serve_metrics

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


def test_the_text_format_says_what_prometheus_clients_own_encoder_says() -> None:
    ours, kept, theirs = _registries()
    body, ctype = render(ours, [kept], None)
    assert ctype.startswith("text/plain; version=0.0.4")
    expected = _samples(text_parse(generate_latest(theirs).decode()))
    assert _samples(text_parse(body.decode())) == expected
    assert ("costgov_hourly_cost_dollars", (("namespace", "ml"), ("team", "nlp"),
            ("workload", "train-1")), 13.76) in expected  # fmt: skip


def test_openmetrics_for_prometheus_one_eof_at_the_end() -> None:
    ours, kept, theirs = _registries()
    body, ctype = render(ours, [kept], PROMETHEUS_ACCEPT)
    assert ctype.startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.count("# EOF") == 1 and text.endswith("# EOF\n")
    # the strict OpenMetrics parser rejects a family split in two or a missing EOF
    assert _samples(om_parse(text)) == _samples(om_parse(om.generate_latest(theirs).decode()))


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


def test_only_a_few_content_types_are_kept_per_cycle() -> None:
    # any client may name a version of its own in Accept: each rendering is the gauge's size
    ours, kept, theirs = _registries()
    for minor in range(20):
        accept = f"application/openmetrics-text;version=1.{minor}.0"
        body, ctype = render(ours, [kept], accept)
        assert f"version=1.{minor}.0" in ctype
        assert _samples(om_parse(body.decode())) == _samples(
            om_parse(om.generate_latest(theirs).decode())
        )
    assert len(kept._rendered) == KEPT_TYPES


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
        named = f"{url}?name[]=costgov_spend_dollars_total"
        with urllib.request.urlopen(named, timeout=5) as r:
            text = r.read().decode()
        assert "costgov_spend_dollars_total" in text and "hourly" not in text
    finally:
        server.shutdown()
        server.server_close()
