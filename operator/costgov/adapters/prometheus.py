"""Prometheus through prometheus-api-client: timeouts, retries, warnings, off the event loop.

The client is blocking (requests); every query runs in a worker thread. Errors become
`MetricsError` with the query named; Prometheus `warnings` in a successful answer are kept
and surfaced with the result, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import math
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from costgov.settings import Settings

_T = TypeVar("_T")

__all__ = [
    "MetricsError",
    "PrometheusSource",
    "QueryResult",
    "RangeSeries",
    "Sample",
    "gather_answers",
    "try_all",
    "try_query",
]


LONG_QUERY = 2000
"""Characters beyond which a query goes in the request body, not the URL."""


class MetricsError(RuntimeError):
    """Prometheus could not answer: down, slow, 5xx, or a bad query. Names the query."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and its value (NaN kept as NaN)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query: its labels and its (unix time, value) points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class QueryResult:
    samples: tuple[Sample, ...]
    warnings: tuple[str, ...] = field(default=())


_local = threading.local()


def _capture_warnings(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """A requests response hook: keep the `warnings` Prometheus sends with a result (the
    body is parsed again only when it has some: at 10,000 pods an answer is megabytes)."""
    if b'"warnings"' not in response.content:
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and body.get("warnings"):
        getattr(_local, "warnings", []).extend(str(w) for w in body["warnings"])


class PrometheusSource:
    """Instant queries against one Prometheus, evaluated at a given time."""

    def __init__(self, settings: Settings, *, session: requests.Session | None = None) -> None:
        self._timeout = settings.query_timeout_seconds
        self._executor: ThreadPoolExecutor | None = None
        session = session or requests.Session()
        session.hooks["response"].append(_capture_warnings)
        headers: dict[str, str] = {}
        token = settings.prometheus_bearer_token
        if settings.prometheus_bearer_token_file is not None:
            token_text = settings.prometheus_bearer_token_file.read_text(encoding="utf-8").strip()
            headers["Authorization"] = f"Bearer {token_text}"
        elif token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        if settings.prometheus_ca_file is not None:
            session.verify = str(settings.prometheus_ca_file)
        auth: tuple[str, ...] = ()
        if settings.prometheus_username and settings.prometheus_password is not None:
            auth = (settings.prometheus_username, settings.prometheus_password.get_secret_value())
        retry = Retry(
            total=settings.query_retries,
            backoff_factor=0.5,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
        )
        self._client = PrometheusConnect(
            url=settings.prometheus_url,
            headers=headers,
            disable_ssl=settings.prometheus_insecure_skip_verify,
            retry=retry,
            auth=auth or None,  # type: ignore[arg-type]  # the library annotates no None
            session=session,
            timeout=math.ceil(self._timeout),
            method="POST",
        )
        self.url = settings.prometheus_url
        self._session, self._headers, self._auth = session, headers, auth or None

    def _in_body(
        self, expr: str, params: dict[str, str], api: str = "query"
    ) -> list[dict[str, Any]]:
        """A long query as a form body: the client library puts every parameter in the URL,
        even for POST, and proxies in front of Prometheus refuse request lines over 8 KiB
        (nginx's and aiohttp's default); the LLM gateways' query is about 9 KiB encoded."""
        response = self._session.post(
            f"{self.url.rstrip('/')}/api/v1/{api}",
            data={"query": expr, **params},
            headers=self._headers,
            auth=self._auth,  # type: ignore[arg-type]
            timeout=math.ceil(self._timeout),
        )
        if response.status_code != 200:
            raise PrometheusApiClientException(
                f"HTTP Status Code {response.status_code} ({response.content[:500]!r})"
            )
        try:
            return list(response.json()["data"]["result"])
        except (KeyError, TypeError) as exc:
            raise PrometheusApiClientException(f"an answer without data.result: {exc!r}") from exc

    @contextlib.contextmanager
    def _answering(self, expr: str) -> Iterator[None]:
        """The client's and the transport's errors as one MetricsError naming the query."""
        try:
            yield
        except PrometheusApiClientException as exc:
            raise MetricsError(f"Prometheus refused the query {_short(expr)}: {exc}") from exc
        except requests.RequestException as exc:
            # a timeout while the body is read comes as a ConnectionError: say what it is
            timed_out = isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower()
            why = f"no answer within {self._timeout:g} s" if timed_out else type(exc).__name__
            raise MetricsError(
                f"Prometheus at {self.url} did not answer {_short(expr)}: {why}"
            ) from exc

    def _query_blocking(self, expr: str, at: datetime) -> QueryResult:
        _local.warnings = []
        params = {"time": f"{at.timestamp():.3f}", "timeout": f"{int(self._timeout * 1000)}ms"}
        with self._answering(expr):
            if len(expr) > LONG_QUERY:
                raw = self._in_body(expr, params)
            else:
                raw = self._client.custom_query(expr, params=params)
        warnings = tuple(_local.warnings)
        samples = []
        for item in raw or []:
            try:
                value = float(item["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            samples.append(Sample(labels=item.get("metric", {}), value=value))
        return QueryResult(tuple(samples), warnings)

    def aside(self, workers: int, name: str) -> PrometheusSource:
        """This source with its own `workers` threads (named `name`), so that slow
        background queries never hold up the ones reconciles wait for."""
        other = copy.copy(self)
        other._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        return other

    def close(self) -> None:
        """Stop the threads of a source made by `aside` (queries under way are abandoned)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._executor is None:
            return await asyncio.to_thread(fn, *args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def query(self, expr: str, at: datetime) -> QueryResult:
        """Evaluate `expr` at `at`, in a worker thread so the event loop stays free."""
        return await self._run(self._query_blocking, expr, at)

    def _range_blocking(
        self, expr: str, start: datetime, end: datetime, step: int
    ) -> tuple[tuple[RangeSeries, ...], tuple[str, ...]]:
        params = {
            "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}",
            "step": str(step), "timeout": f"{int(self._timeout * 1000)}ms",
        }  # fmt: skip
        return self._series_blocking(expr, params, "query_range")

    def _series_blocking(
        self, expr: str, params: dict[str, str], api: str
    ) -> tuple[tuple[RangeSeries, ...], tuple[str, ...]]:
        _local.warnings = []
        with self._answering(expr):
            raw = self._in_body(expr, params, api)
        series = []
        for item in raw:
            if "values" not in item:  # an instant vector: no points to sum, never $0 for it
                raise MetricsError(f"Prometheus answered {_short(expr)} with no range vector")
            points = []
            for point in item.get("values") or []:
                try:
                    points.append((float(point[0]), float(point[1])))
                except (IndexError, TypeError, ValueError):
                    continue
            series.append(RangeSeries(item.get("metric", {}), tuple(points)))
        return tuple(series), tuple(_local.warnings)

    async def points(
        self, expr: str, at: datetime
    ) -> tuple[tuple[RangeSeries, ...], tuple[str, ...]]:
        """Evaluate `expr`, a range vector (a subquery: `(...)[range:step]`), at `at`: each
        series with its points (series, warnings). One evaluation gives both a window's
        sum and its last point, which a range query would take two for."""
        params = {"time": f"{at.timestamp():.3f}", "timeout": f"{int(self._timeout * 1000)}ms"}
        return await self._run(self._series_blocking, expr, params, "query")

    async def query_range(
        self, expr: str, start: datetime, end: datetime, step: int
    ) -> tuple[tuple[RangeSeries, ...], tuple[str, ...]]:
        """Evaluate `expr` every `step` seconds from `start` to `end` (series, warnings)."""
        return await self._run(self._range_blocking, expr, start, end, step)


def _short(expr: str) -> str:
    return repr(expr if len(expr) <= 120 else expr[:117] + "...")


async def try_query(
    source: PrometheusSource, expr: str, at: datetime
) -> QueryResult | MetricsError:
    """`source.query` with its MetricsError returned, not raised: for queries run side by
    side as tasks, so that none ends in an exception nobody retrieves when the cycle is
    cancelled (kopf re-raises those when the operator stops)."""
    try:
        return await source.query(expr, at)
    except MetricsError as exc:
        return exc


async def gather_answers(answers: Iterable[Awaitable[_T]]) -> list[_T] | MetricsError:
    """Queries side by side (batches of one question, by pod name): their answers in order,
    or the first MetricsError when any failed (any other exception is raised)."""
    outcomes = await asyncio.gather(*answers, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, MetricsError):
            return outcome
        if isinstance(outcome, BaseException):
            raise outcome
    return cast("list[_T]", outcomes)


async def try_all(
    source: PrometheusSource, exprs: Iterable[str], at: datetime
) -> QueryResult | MetricsError:
    """`source.query` for these queries side by side (gathered: no failure goes
    unretrieved when the cycle is cancelled), their samples and warnings as one
    answer; the first failure when any failed."""
    found = await gather_answers(source.query(e, at) for e in exprs)
    if isinstance(found, MetricsError):
        return found
    samples = tuple(s for result in found for s in result.samples)
    return QueryResult(samples, tuple(w for result in found for w in result.warnings))
