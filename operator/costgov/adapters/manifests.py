"""Read Kubernetes manifests from YAML files and directories (multi-document)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Document", "ManifestReadError", "read_documents"]

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


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES)
        elif path.exists():
            yield path
        else:
            raise ManifestReadError(f"{path}: no such file or directory")


def read_documents(paths: Iterable[Path]) -> list[Document]:
    """Every non-empty document of every file (directories are walked, sorted by name).

    A `kind: List` document is unwrapped into its items.
    """
    out: list[Document] = []
    for file in _files(paths):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestReadError(f"{file}: cannot read: {exc}") from exc
        try:
            bodies = list(yaml.load_all(text, Loader=_LOADER))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ManifestReadError(f"{file}: malformed YAML{where}: {problem}") from exc
        for index, body in enumerate(bodies):
            if body is None:
                continue
            if isinstance(body, dict) and body.get("kind") == "List":
                out.extend(Document(str(file), index, item) for item in body.get("items") or [])
            else:
                out.append(Document(str(file), index, body))
    return out
