"""Load the bundled catalog and users' pricing files (same format), with clear errors."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from costgov.api.errors import describe_validation_error
from costgov.domain.catalogs import PriceCatalog

__all__ = ["BUNDLED_PATH", "CatalogError", "load_catalog", "load_pricing_file"]

BUNDLED_PATH = Path(__file__).with_name("data") / "prices.yaml"


class CatalogError(ValueError):
    """A pricing file that cannot be used; the message names the file and the field."""


def _parse(text: str, source: str) -> PriceCatalog:
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(
            f"{source}: expected a mapping with version, instances and/or gpuHourly, "
            f"got {type(raw).__name__}"
        )
    # ConfigMap-friendly: accept the catalog wrapped in apiVersion/kind like other costgov files.
    raw = {k: v for k, v in raw.items() if k not in ("apiVersion", "kind")}
    try:
        return PriceCatalog.model_validate(raw)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        raise CatalogError(f"{source}: invalid pricing file:\n  " + "\n  ".join(problems)) from exc


@cache
def _bundled() -> PriceCatalog:
    return _parse(BUNDLED_PATH.read_text(encoding="utf-8"), f"bundled catalog {BUNDLED_PATH}")


def load_pricing_file(path: Path) -> PriceCatalog:
    """Read and validate one pricing file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read pricing file: {exc.strerror}") from exc
    return _parse(text, str(path))


def load_catalog(override: Path | None = None) -> PriceCatalog:
    """The bundled catalog, with a user's pricing file merged over it when given."""
    bundled = _bundled()
    if override is None:
        return bundled
    return bundled.merged(load_pricing_file(override))
