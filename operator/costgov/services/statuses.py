"""Status in one place: typed `*Status` models in, the merge patch kopf writes out.

Reconcilers build the typed status; fields they leave unset keep what the object had (a
merge patch), fields set to None are removed. The old status is read back into the same
model; an unreadable one counts as empty (accounting then starts over, correctly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from costgov.api.common import StatusBase

__all__ = ["read_status", "render_status"]

S = TypeVar("S", bound=StatusBase)


def read_status(model: type[S], raw: Mapping[str, Any] | None) -> S:
    """The status an object carries, as its model (empty when absent or unreadable)."""
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError:
        return model()


def _compact(value: Any, *, top: bool = False) -> Any:
    """Nulls inside list items mean nothing to a merge patch (lists are replaced whole):
    drop them, so what is written is what the apiserver keeps. Nulls in an object outside
    a list stay: they remove a nested figure that no longer applies."""
    if isinstance(value, dict):
        return {k: _compact(v, top=top) for k, v in value.items() if top or v is not None}
    if isinstance(value, list):
        return [_compact(item) for item in value]
    return value


def render_status(status: StatusBase) -> dict[str, Any]:
    """The merge patch for `.status`: what was set, in wire spelling (top-level nulls stay:
    they remove a figure that no longer applies)."""
    rendered = status.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return {k: _compact(v, top=True) for k, v in rendered.items()}
