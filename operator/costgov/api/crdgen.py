"""Generate apiextensions.k8s.io/v1 CustomResourceDefinitions from the pydantic models.

The models are the truth (as Go types are for kubebuilder); this turns their JSON schema into
a structural OpenAPI v3 schema: `$ref`s inlined, `title`s dropped, optional fields made
plain, `const` turned into `enum`, and our `x-kubernetes-*` extensions kept.
"""

from __future__ import annotations

from typing import Any

from costgov.api.common import GROUP, VERSION, Resource

__all__ = ["crd_for", "crds", "structural_schema"]

_DROP = {"title", "examples"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key == "$defs":
            continue
        if key == "properties":
            out[key] = {name: _inline(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _inline(value, defs)
    return _structural(out)


def _structural(node: dict[str, Any]) -> dict[str, Any]:
    any_of = node.get("anyOf")
    if any_of is not None and not node.get("x-kubernetes-int-or-string"):
        # Optional[X] arrives as anyOf [X, null]: the field is simply optional in the CRD.
        rest = [branch for branch in any_of if branch.get("type") != "null"]
        if len(rest) == 1:
            node = {**rest[0], **{k: v for k, v in node.items() if k != "anyOf"}}
            node.pop("default", None) if node.get("default", 0) is None else None
    pattern_props = node.pop("patternProperties", None)
    if pattern_props:
        # CRD schemas forbid patternProperties: a map keeps its value schema; keys are
        # checked by the models (and by CEL where it matters).
        node["additionalProperties"] = next(iter(pattern_props.values()))
    node.pop("propertyNames", None)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("default", 0) is None:
        del node["default"]
    if (
        node.get("type") == "object"
        and "properties" not in node
        and ("additionalProperties" not in node)
    ):
        node["x-kubernetes-preserve-unknown-fields"] = True
    if node.get("type") == "object" and "properties" in node:
        node.pop("additionalProperties", None)
    if "exclusiveMinimum" in node and not isinstance(node["exclusiveMinimum"], bool):
        node["minimum"] = node.pop("exclusiveMinimum")
        node["exclusiveMinimum"] = True
    if "x-kubernetes-int-or-string" in node:
        # A structural int-or-string has no `type`; the branches carry the constraints.
        node.pop("type", None)
        node.pop("default", None) if not isinstance(node.get("default"), int | str) else None
    return node


def structural_schema(model: type[Resource]) -> dict[str, Any]:
    """The openAPIV3Schema of one resource."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    schema: dict[str, Any] = _inline(raw, defs)
    props = schema["properties"]
    props["apiVersion"] = {"type": "string", "description": "APIVersion of this object."}
    props["kind"] = {"type": "string", "description": "Kind of this object."}
    props["metadata"] = {"type": "object"}
    props["status"].pop("default", None)
    props["spec"].pop("default", None)
    schema["required"] = ["spec"]
    schema["description"] = model.INFO.description
    schema.pop("additionalProperties", None)
    return schema


def crd_for(model: type[Resource]) -> dict[str, Any]:
    """The whole CustomResourceDefinition of one resource."""
    info = model.INFO
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "costgov", "app.kubernetes.io/part-of": "costgov"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": info.short_names,
                "categories": info.categories,
            },
            "scope": info.scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": info.printer_columns,
                    "schema": {"openAPIV3Schema": structural_schema(model)},
                }
            ],
        },
    }


def crds() -> list[dict[str, Any]]:
    """Every costgov CRD, in a stable order."""
    from costgov.api import RESOURCES

    return [crd_for(model) for model in RESOURCES]
