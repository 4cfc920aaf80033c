"""AdmissionReviews as they arrive: checked for shape before anything judges them, and the
answers costgov gives when it cannot judge one.

Every review that carries a usable `request.uid` gets an AdmissionReview back, with that uid:
a malformed one is denied with a message naming the field (code 400), never answered with
an HTTP 500 or an empty allowance. Only bodies with no usable uid get a bare HTTP 400.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_BODY", "ReviewError", "denial", "handler_kwargs", "parse_review", "review_answer"]

MAX_BODY = 8 * 1024 * 1024
"""The apiserver accepts objects of up to 3 MiB; an UPDATE's review carries the object and
the old object: 8 MiB holds both and the envelope."""
MAX_UID = 128
OPERATIONS = ("CREATE", "UPDATE")


class ReviewError(ValueError):
    """A body costgov cannot judge; `uid` is the request's when it has a usable one."""

    def __init__(self, message: str, uid: str | None = None) -> None:
        super().__init__(message)
        self.uid = uid


def _uid(request: Mapping[str, Any]) -> str | None:
    uid = request.get("uid")
    if isinstance(uid, str) and 0 < len(uid) <= MAX_UID:
        return uid
    return None


def _check(request: Mapping[str, Any], uid: str) -> None:
    """Raise ReviewError naming the first field that is not as the apiserver sends it."""
    for field, kind in (("kind", dict), ("resource", dict), ("userInfo", dict)):
        if not isinstance(request.get(field), kind):
            raise ReviewError(f"request.{field}: expected an object", uid)
    user = request["userInfo"].get("username")
    if not isinstance(user, str):
        raise ReviewError("request.userInfo.username: expected a string", uid)
    groups = request["userInfo"].get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ReviewError("request.userInfo.groups: expected a list of strings", uid)
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise ReviewError(
            f"request.operation: costgov judges {' and '.join(OPERATIONS)}, not {operation!r}",
            uid,
        )
    if not isinstance(request.get("object"), dict):
        raise ReviewError("request.object: expected the object being admitted", uid)
    old = request.get("oldObject")
    if operation == "UPDATE" and not isinstance(old, dict):
        raise ReviewError("request.oldObject: an UPDATE carries the object as it was", uid)
    if old is not None and not isinstance(old, dict):
        raise ReviewError("request.oldObject: expected an object or null", uid)
    for field in ("namespace", "subResource"):
        if request.get(field) is not None and not isinstance(request.get(field), str):
            raise ReviewError(f"request.{field}: expected a string", uid)
    if not isinstance(request.get("dryRun", False), bool):
        raise ReviewError("request.dryRun: expected true or false", uid)


def parse_review(body: bytes) -> dict[str, Any]:
    """The AdmissionReview in `body`, checked; ReviewError (with the uid when there is one)
    for anything else. JSON of any depth, size or number is refused cleanly."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # includes UnicodeDecodeError, huge ints
        raise ReviewError(f"not JSON: {str(exc)[:200]}") from exc
    request = data.get("request") if isinstance(data, dict) else None
    if not isinstance(request, dict):
        raise ReviewError("not an AdmissionReview: expected an object with `request`")
    uid = _uid(request)
    if uid is None:
        raise ReviewError("request.uid: expected a non-empty string of at most 128 characters")
    _check(request, uid)
    return data  # type: ignore[no-any-return]


def denial(uid: str, code: int, message: str) -> dict[str, Any]:
    """An AdmissionReview that refuses the request, for the apiserver to relay."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": uid,
            "allowed": False,
            "status": {"code": code, "message": message[:4096]},
        },
    }


def handler_kwargs(request: Mapping[str, Any]) -> dict[str, Any]:
    """What kopf gives an admission handler about a checked review's request."""
    return {
        "userinfo": request["userInfo"],
        "operation": request.get("operation"),
        "dryrun": bool(request.get("dryRun")),
        "subresource": request.get("subResource"),
        "namespace": request.get("namespace"),
    }


def review_answer(
    data: Mapping[str, Any], warnings: list[str], refusal: tuple[int, str] | None
) -> dict[str, Any]:
    """The AdmissionReview answer, as kopf's build_response shapes it: allowed unless
    refused (code, message), with the warnings."""
    response: dict[str, Any] = {"uid": data["request"]["uid"], "allowed": refusal is None}
    if refusal is not None:
        response["status"] = {"message": refusal[1], "code": refusal[0]}
    if warnings:
        response["warnings"] = [str(w) for w in warnings]
    return {
        "apiVersion": data.get("apiVersion", "admission.k8s.io/v1"),
        "kind": data.get("kind", "AdmissionReview"),
        "response": response,
    }
