"""The shape the engineering standards ask of operator/: files under 400 lines, functions
under 60, kopf handlers a few lines (at most 20). Checked by reading the source."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "operator" / "costgov"
FILES = sorted(SOURCE.rglob("*.py"))


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (f"{path.relative_to(SOURCE)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_the_source_is_there() -> None:
    assert len(FILES) > 40


def test_no_file_over_400_lines() -> None:
    long = {
        str(p.relative_to(SOURCE)): n for p in FILES if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_no_function_over_60_lines() -> None:
    long = {name: n for path in FILES for name, n in _functions(path) if n > 60}
    assert long == {}


def test_kopf_handlers_are_a_few_lines() -> None:
    handlers = [p for p in (SOURCE / "handlers").glob("*.py") if p.name != "running.py"]
    long = {name: n for path in handlers for name, n in _functions(path) if n > 20}
    assert long == {}
