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
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp.web
import kopf

from costgov.handlers.admitting import ADMITTED, REVIEW
from costgov.services.reviews import MAX_BODY, ReviewError, denial, parse_review

__all__ = ["WEBHOOKS", "SafeWebhookServer"]

log = logging.getLogger("costgov")

WEBHOOKS: dict[str, tuple[str, str, str | None]] = {
    f"{plural}-{sub}" if sub else plural: (group, plural, sub)
    for group, _, plural, _, sub in ADMITTED
}
"""Webhook path id -> (API group, resource, subresource) it judges."""


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

    async def _serve(self, fn: Any, request: aiohttp.web.Request) -> aiohttp.web.Response:  # type: ignore[override]
        response = await self._answer(fn, request)
        if self.draining:
            response.force_close()
        return response

    async def _answer(self, fn: Any, request: aiohttp.web.Request) -> aiohttp.web.Response:
        webhook = request.match_info.get("id", "")
        if webhook not in WEBHOOKS:
            return aiohttp.web.json_response({"error": f"no webhook at /{webhook}"}, status=404)
        try:
            data = parse_review(await _body(request))
            _routed(data, webhook)
        except _TooLargeError:
            return aiohttp.web.json_response({"error": "request body too large"}, status=413)
        except ReviewError as exc:
            if exc.uid is None:
                return aiohttp.web.json_response({"error": str(exc)[:500]}, status=400)
            return aiohttp.web.json_response(denial(exc.uid, 400, f"costgov: {exc}"))
        return await _judged(fn, data, webhook, request)


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
) -> aiohttp.web.Response:
    """kopf's answer to a checked review; a clean denial when kopf cannot take it."""
    token = REVIEW.set(data)
    try:
        headers = dict(request.headers)
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        return aiohttp.web.json_response(
            await fn(_for_kopf(data), webhook=webhook, sslpeer=peer, headers=headers)
        )
    except Exception as exc:  # kopf could not take it (e.g. a resource it does not know)
        log.warning(f"webhook /{webhook}: {type(exc).__name__}: {exc}")
        message = f"costgov cannot judge this request: {exc}"[:500]
        return aiohttp.web.json_response(denial(data["request"]["uid"], 400, message))
    finally:
        REVIEW.reset(token)
