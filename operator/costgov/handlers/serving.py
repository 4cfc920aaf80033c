"""costgov's webhook server: kopf's, hardened at the HTTP edge.

- Bodies are read up to `MAX_BODY` (8 MiB: an UPDATE of a 3 MiB object carries it twice),
  never through aiohttp's 1 MiB default and never decoded with a client's charset.
- Reviews are checked for shape before kopf sees them; a review with a usable uid gets an
  AdmissionReview back (a denial naming the field when it is malformed), anything else a
  clean 400; an unknown path is a 404, never an allowance.
- The review is checked against the path it came to (resource, subresource), so a review
  for one kind posted to another kind's path is refused rather than allowed by default.
- The parsed review is handed to the handler through a context variable (`REVIEW`); kopf
  gets it with the objects cut down to their identity (`_for_kopf`): kopf deep-copies the
  body it is given to build a JSON patch, which a validating webhook never makes, and on a
  3 MiB pod that copy alone took ~0.4 s of the event loop every review waits on.
- Reviews for costgov's own webhooks go straight to its judge (`_direct`), with the
  operator's memo and indexes that kopf hands its webhook function: kopf's per-request
  handler machinery (cause, per-object memo, progress state, kwargs with every index
  copied, patch) cost about as much as the judgement itself and gave costgov nothing
  (its handlers never patch, retry or use a per-object memo). kopf's path stays for
  anything else it serves.
- Every request answered with an error counts in `costgov_webhook_errors_total` by reason:
  `not_found` (404), `too_large` (413), `invalid` (a 400, or a review denied with code 400
  for its shape or path), `exception` (kopf could not take the review), `internal` (kopf
  answered with a 5xx: a handler raised).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import ChainMap
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp.web
import kopf

from costgov.adapters.metrics import OperatorMetrics
from costgov.handlers.admitting import ADMITTED, REVIEW, judge
from costgov.services.reviews import (
    MAX_BODY,
    ReviewError,
    denial,
    handler_kwargs,
    parse_review,
    review_answer,
)

__all__ = ["DIRECT", "WEBHOOKS", "SafeWebhookServer"]

log = logging.getLogger("costgov")

WEBHOOKS: dict[str, tuple[str, str, str | None]] = {
    f"{plural}-{sub}" if sub else plural: (group, plural, sub)
    for group, _, plural, _, sub in ADMITTED
}
"""Webhook path id -> (API group, resource, subresource) it judges."""

Judge = Callable[[Mapping[str, Any]], Awaitable[None]]
DIRECT: dict[str, Judge] = {
    f"{plural}-{sub}" if sub else plural: functools.partial(judge, kind)
    for _, _, plural, kind, sub in ADMITTED
}
"""Webhook path id -> costgov's judge for it, called without kopf's handler machinery."""


class _TooLargeError(Exception):
    pass


async def _body(request: aiohttp.web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _TooLargeError
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _routed(data: dict[str, Any], webhook: str) -> None:
    """The review must be for what the path judges."""
    group, plural, sub = WEBHOOKS[webhook]
    request = data["request"]
    resource = request["resource"]
    if (resource.get("group", ""), resource.get("resource")) != (group, plural):
        raise ReviewError(
            f"request.resource: /{webhook} judges {plural}.{group or 'core'}, not "
            f"{resource.get('resource')}.{resource.get('group') or 'core'}",
            request["uid"],
        )
    if request.get("subResource") != sub:
        raise ReviewError(
            f"request.subResource: /{webhook} judges {sub or 'the object itself'}, not "
            f"{request.get('subResource')!r}",
            request["uid"],
        )


class SafeWebhookServer(kopf.WebhookServer):
    """kopf's webhook server, answering everything it cannot judge cleanly.

    Draining (SIGUSR1, sent by the chart's pre-stop hook): every answer from then on closes
    its connection, so the apiserver's next call opens a new one, which the Service sends to
    another replica; this one serves on until SIGTERM."""

    draining = False

    def drain(self) -> None:
        if not self.draining:
            log.info("draining: each webhook connection closes after its answer")
        self.draining = True

    def __init__(self, *, metrics: OperatorMetrics | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.metrics = metrics or OperatorMetrics()
        kinds = dict.fromkeys(kind for _, _, _, kind, _ in ADMITTED)
        self.metrics.zero_series(WEBHOOKS, kinds)

    async def _serve(self, fn: Any, request: aiohttp.web.Request) -> aiohttp.web.Response:  # type: ignore[override]
        response = await self._answered(fn, request)
        if self.draining:
            response.force_close()
        return response

    async def _answered(self, fn: Any, request: aiohttp.web.Request) -> aiohttp.web.Response:
        started = time.perf_counter()
        webhook = request.match_info.get("id", "")
        answer, reason = await _answer(fn, request, webhook)
        known = webhook if webhook in WEBHOOKS else ""  # a client's path is never a label
        if reason is not None:
            self.metrics.webhook_error(known, reason)
        self.metrics.webhook_latency.labels(known).observe(time.perf_counter() - started)
        return answer


def _http(status: int, error: str) -> aiohttp.web.Response:
    return aiohttp.web.json_response({"error": error}, status=status)


async def _answer(
    fn: Any, request: aiohttp.web.Request, webhook: str
) -> tuple[aiohttp.web.Response, str | None]:
    """The answer to one request, and why it is an error answer if it is one."""
    if webhook not in WEBHOOKS:
        return _http(404, f"no webhook at /{webhook}"), "not_found"
    try:
        data = parse_review(await _body(request))
        _routed(data, webhook)
    except _TooLargeError:
        return _http(413, "request body too large"), "too_large"
    except ReviewError as exc:
        if exc.uid is None:
            return _http(400, str(exc)[:500]), "invalid"
        return aiohttp.web.json_response(denial(exc.uid, 400, f"costgov: {exc}")), "invalid"
    answer, reason = await _judged(fn, data, webhook, request)
    return aiohttp.web.json_response(answer), reason


_IDENTITY = ("name", "namespace", "uid", "generateName", "labels")


def _identity(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    meta = obj.get("metadata")
    kept = {k: meta[k] for k in _IDENTITY if k in meta} if isinstance(meta, dict) else {}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": kept}


def _for_kopf(data: dict[str, Any]) -> dict[str, Any]:
    """The review as kopf needs it to route and log (resource, user, operation, the
    objects' identity); costgov's handler reads the whole objects from `REVIEW`."""
    request = data["request"]
    slim = {**request, "object": _identity(request.get("object"))}
    if request.get("oldObject") is not None:
        slim["oldObject"] = _identity(request["oldObject"])
    return {**data, "request": slim}


async def _judged(
    fn: Any, data: dict[str, Any], webhook: str, request: aiohttp.web.Request
) -> tuple[dict[str, Any], str | None]:
    """kopf's answer to a checked review (a clean denial when kopf cannot take it), and why
    it is an error answer, if it is one."""
    direct, state = DIRECT.get(webhook), _kopf_state(fn)
    if direct is not None and state is not None:
        answer = await _direct(direct, data, *state)
    else:
        answer_or_error = await _through_kopf(fn, data, webhook, request)
        if isinstance(answer_or_error, tuple):
            return answer_or_error
        answer = answer_or_error
    status = (answer.get("response") or {}).get("status") or {}
    return answer, "internal" if int(status.get("code") or 0) >= 500 else None


async def _through_kopf(
    fn: Any, data: dict[str, Any], webhook: str, request: aiohttp.web.Request
) -> dict[str, Any] | tuple[dict[str, Any], str]:
    """kopf's answer, or a clean denial and its reason when kopf cannot take the review."""
    token = REVIEW.set(data)
    try:
        headers = dict(request.headers)
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        answer = await fn(_for_kopf(data), webhook=webhook, sslpeer=peer, headers=headers)
    except Exception as exc:  # kopf could not take it (e.g. a resource it does not know)
        log.warning(f"webhook /{webhook}: {type(exc).__name__}: {exc}")
        message = f"costgov cannot judge this request: {exc}"[:500]
        return denial(data["request"]["uid"], 400, message), "exception"
    finally:
        REVIEW.reset(token)
    return answer  # type: ignore[no-any-return]


def _kopf_state(fn: Any) -> tuple[Any, Mapping[str, Any]] | None:
    """The operator's memo and indexes, as kopf binds them to its webhook function (kopf
    1.x `_core/reactor/running.py`); None, said once in the log, if kopf no longer does."""
    bound = getattr(fn, "keywords", None) or {}
    memo, indices = bound.get("memobase"), bound.get("indices")
    if memo is None or indices is None:
        _say_fallback()
        return None
    return memo, indices


@functools.cache
def _say_fallback() -> None:
    """Said once: reviews then go through kopf (correct, slower)."""
    log.warning("kopf's webhook function carries no memo and indexes: costgov's reviews go "
                "through kopf's handler machinery (slower)")  # fmt: skip


async def _direct(
    judged: Judge, data: dict[str, Any], memo: Any, indices: Mapping[str, Any]
) -> dict[str, Any]:
    """costgov's answer to a checked review, built as kopf builds one: allowed unless the
    judge raised; a denial's code from its AdmissionError, else 500."""
    warnings: list[str] = []
    given = {**handler_kwargs(data["request"]), "memo": memo, "warnings": warnings}
    refusal: tuple[int, str] | None = None
    token = REVIEW.set(data)
    try:
        await judged(ChainMap(given, indices))  # type: ignore[arg-type]
    except kopf.AdmissionError as exc:
        refusal = exc.code or 500, str(exc) or repr(exc)
    except Exception as exc:
        log.exception(f"judging {data['request'].get('kind')} failed")
        refusal = 500, str(exc) or repr(exc)
    finally:
        REVIEW.reset(token)
    return review_answer(data, warnings, refusal)
