"""Label selector matching, as metav1.LabelSelector means it."""

from __future__ import annotations

from collections.abc import Mapping

from costgov.api.fields import LabelSelector

__all__ = ["matches"]


def matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """True when the labels satisfy every matchLabels pair and matchExpression.

    A missing (None) or empty selector matches everything, as in Kubernetes.
    """
    if selector is None:
        return True
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for expr in selector.match_expressions:
        present = expr.key in labels
        if expr.operator == "In" and not (present and labels[expr.key] in expr.values):
            return False
        if expr.operator == "NotIn" and present and labels[expr.key] in expr.values:
            return False
        if expr.operator == "Exists" and not present:
            return False
        if expr.operator == "DoesNotExist" and present:
            return False
    return True
