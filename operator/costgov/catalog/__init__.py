"""The bundled price catalog and the loader for users' pricing files."""

from costgov.catalog.loading import BUNDLED_PATH, CatalogError, load_catalog, load_pricing_file

__all__ = ["BUNDLED_PATH", "CatalogError", "load_catalog", "load_pricing_file"]
