"""Read Kubernetes manifests from YAML files and directories (multi-document)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["HELM_MARKER", "STDIN", "Document", "ManifestReadError", "read_documents"]

_SUFFIXES = {".yaml", ".yml", ".json"}
# libyaml's C parser when PyYAML was built with it (its wheels are): about 10x faster.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Document:
    """One YAML document: where it came from and what it holds."""

    path: str
    index: int
    """0-based position of the document in its file."""
    body: Any

    @property
    def where(self) -> str:
        return f"{self.path} (document {self.index})"


class ManifestReadError(ValueError):
    """A file that cannot be read or parsed; the message names it."""


STDIN = Path("-")
"""`-f -`: read the manifests from standard input (e.g. `helm template ... | costgov estimate -f -`)."""
MAX_STDIN = 64 * 1024 * 1024


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path == STDIN:
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES)
        elif path.exists():
            yield path
        else:
            raise ManifestReadError(f"{path}: no such file or directory")


def _text(file: Path) -> str:
    if file == STDIN:
        data = sys.stdin.buffer.read(MAX_STDIN + 1)
        if len(data) > MAX_STDIN:
            raise ManifestReadError(f"<stdin>: more than {MAX_STDIN // 2**20} MiB")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestReadError(f"<stdin>: cannot read: {exc}") from exc
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestReadError(f"{file}: cannot read: {exc}") from exc


def _parse(name: str, text: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=_LOADER))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestReadError(f"{name}: malformed YAML{where}: {problem}") from exc


HELM_MARKER = "{{"
"""Template actions: a file with them is a Helm (Go) template, not YAML to judge yet."""


def _items(name: str, index: int, body: dict[str, Any]) -> list[Document]:
    """A list document's items, as kubectl reads them: `kind: List` (v1) or a typed list
    (JobList, PodList...) whose items may leave out their kind and apiVersion (the
    apiserver does): they are then the list's kind without "List", and its apiVersion."""
    items = body.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise ManifestReadError(f"{name} (document {index}): items: expected a list")
    kind = str(body["kind"])
    typed = {"apiVersion": body.get("apiVersion"), "kind": kind[:-4]} if kind != "List" else {}
    out = []
    for item in items:
        if typed and isinstance(item, dict) and "kind" not in item and "apiVersion" not in item:
            item = {**typed, **item}
        out.append(Document(name, index, item))
    return out


def _is_list(body: Any) -> bool:
    kind = body.get("kind") if isinstance(body, dict) else None
    return isinstance(kind, str) and kind.endswith("List") and "items" in body


def read_documents(paths: Iterable[Path], unreadable: list[str] | None = None) -> list[Document]:
    """Every non-empty document of every file (directories are walked, sorted by name;
    `-` is standard input). List documents (`kind: List`, `JobList`...) are unwrapped into
    their items.

    A file that is not YAML raises ManifestReadError naming it (and the line), except a
    Helm template (it holds `{{`), which, when `unreadable` is given, is recorded there
    (file and why) and skipped.
    """
    out: list[Document] = []
    for file in _files(paths):
        name = "<stdin>" if file == STDIN else str(file)
        text = _text(file)
        try:
            bodies = _parse(name, text)
        except ManifestReadError as exc:
            if unreadable is None or HELM_MARKER not in text:
                raise
            unreadable.append(str(exc))
            continue
        for index, body in enumerate(bodies):
            if body is None:
                continue
            if _is_list(body):
                out.extend(_items(name, index, body))
            else:
                out.append(Document(name, index, body))
    return out
