"""Readable errors from pydantic validation: the field path in wire (camelCase) spelling."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["describe_validation_error"]


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "constrained-")) or part in {"str", "int", "decimal"}:
            continue  # pydantic's validator names, not fields
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def describe_validation_error(exc: ValidationError, *, root: str = "") -> list[str]:
    """One line per problem: `<root>.<field.path>: <what is wrong>`."""
    lines = []
    for error in exc.errors(include_url=False):
        path = _path(tuple(error["loc"]))
        where = f"{root}.{path}" if root and path != "(top level)" else (root or path)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; fields are camelCase)"
        lines.append(f"{where}: {message}")
    return lines
