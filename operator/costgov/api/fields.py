"""Field types shared by the CRD models: money, durations, label selectors, conditions.

Each type validates in Python (pydantic) and carries the JSON schema the CRD generator
puts into the structural OpenAPI schema, so the CLI and the apiserver reject the same input.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "Condition",
    "ConditionStatus",
    "Duration",
    "LabelSelector",
    "LabelSelectorRequirement",
    "Money",
    "Percent",
    "SignedMoney",
    "Spec",
    "format_duration",
    "parse_duration",
    "parse_money",
    "parse_rate",
    "wire_name",
]


_ACRONYMS = (("Gpu", "GPU"), ("Api", "API"), ("Cpu", "CPU"), ("Gib", "GiB"))


def wire_name(field_name: str) -> str:
    """snake_case -> the Kubernetes spelling: camelCase with acronyms in capitals
    (allowed_gpu_models -> allowedGPUModels), as the API conventions ask."""
    name = to_camel(field_name)
    for word, acronym in _ACRONYMS:
        name = re.sub(rf"{word}(?=[A-Z]|s[A-Z]|s$|$)", acronym, name)
    return name


class Spec(BaseModel):
    """Base of every CRD sub-object: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=wire_name,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


# ---------------------------------------------------------------------------------- money

MONEY_PATTERN = r"^[0-9]+(\.[0-9]{1,2})?$"


def parse_money(value: Any, *, decimals: int = 2) -> Decimal:
    """Parse a non-negative USD amount with at most `decimals` places (cents by default).

    Accepts integers, decimal strings ("1500", "1500.50") and Decimals. Floats are refused
    unless they are whole numbers, since 0.1 + 0.2 style drift is what Decimal is here to avoid.
    """
    if isinstance(value, bool):
        raise ValueError('expected a dollar amount such as 1500 or "1500.50", got a boolean')
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(
                f"expected a dollar amount as a quoted string "
                f'(write "{value}" in quotes), got the float {value!r}'
            )
        text = str(int(value))
    elif isinstance(value, str):
        text = value.strip().lstrip("$").replace(",", "")
    else:
        raise ValueError(f"expected a dollar amount, got {type(value).__name__}")
    if not re.match(rf"^[0-9]+(\.[0-9]{{1,{decimals}}})?$", text):
        raise ValueError(
            f"expected a non-negative dollar amount with at most {decimals} decimals "
            f'(e.g. 1500 or "1500.50"), got {value!r}'
        )
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise ValueError(f"not a number: {value!r}") from exc


def parse_rate(value: Any) -> Decimal:
    """Parse a price per hour: like money, but with up to six decimals (0.8048, 2.24208)."""
    return parse_money(value, decimals=6)


def _int_or_string(pattern: str) -> WithJsonSchema:
    """The structural int-or-string schema: exactly these two branches, with the value
    checks outside them (each applies to the matching type only)."""
    return WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "minimum": 0,
            "maxLength": 32,  # bounds CEL cost estimates of rules over these fields
            "pattern": pattern,
        }
    )


def _money_str(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


Money = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    PlainSerializer(_money_str, return_type=str, when_used="json"),
    _int_or_string(MONEY_PATTERN),
]
"""US dollars, non-negative, cents precision; integer or decimal string on the wire."""


def _signed_money(value: Any) -> Decimal:
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_money(value.strip()[1:])
    if isinstance(value, int | Decimal) and not isinstance(value, bool) and value < 0:
        return -parse_money(-value)
    return parse_money(value)


SignedMoney = Annotated[
    Decimal,
    BeforeValidator(_signed_money),
    PlainSerializer(_money_str, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,2})?$"}),
]
"""USD that may be negative (a budget overspent has negative `remaining`); string on the wire."""


# ------------------------------------------------------------------------------ durations

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}


def parse_duration(value: Any) -> int:
    """Parse a Go-style duration ("72h", "1h30m", "90s") or a number of seconds.

    Returns whole seconds (rounded down); negative or empty durations are refused.
    """
    if isinstance(value, bool):
        raise ValueError('expected a duration such as "72h" or a number of seconds')
    if isinstance(value, int):
        seconds = Decimal(value)
    elif isinstance(value, float):
        seconds = Decimal(str(value))
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            seconds = Decimal(text)
        elif _DURATION_RE.match(text):
            seconds = sum(
                (Decimal(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART_RE.findall(text)),
                Decimal(0),
            )
        else:
            raise ValueError(
                f'expected a Go-style duration such as "72h", "1h30m" or "90s", '
                f"or a number of seconds, got {value!r}"
            )
    else:
        raise ValueError(f"expected a duration, got {type(value).__name__}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return int(seconds)


def format_duration(seconds: int) -> str:
    """Render seconds the way Go prints durations, without zero parts: 259200 -> "72h"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts) or "0s"


Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    _int_or_string(DURATION_PATTERN),
]
"""A duration in whole seconds; Go-style string ("72h") or integer seconds on the wire."""

Percent = Annotated[int, Field(ge=0, le=100)]


# ------------------------------------------------------------------------ label selectors

# Kubernetes label keys: optional DNS-subdomain prefix, then a name of at most 63 chars.
_LABEL_NAME = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
_LABEL_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
_LABEL_VALUE_RE = re.compile(rf"^({_LABEL_NAME})?$")


def _check_label_key(key: str) -> str:
    if not _LABEL_KEY_RE.match(key):
        raise ValueError(
            f"{key!r} is not a valid label key: expected an optional DNS prefix and '/', "
            "then at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        )
    return key


def _check_label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid label value: at most 63 alphanumerics, '-', '_' or '.', "
            "starting and ending alphanumeric"
        )
    return value


LabelKey = Annotated[
    str,
    AfterValidator(_check_label_key),
    WithJsonSchema({"type": "string", "maxLength": 317, "pattern": _LABEL_KEY_RE.pattern}),
]
LabelValue = Annotated[
    str,
    AfterValidator(_check_label_value),
    WithJsonSchema({"type": "string", "maxLength": 63, "pattern": _LABEL_VALUE_RE.pattern}),
]


class LabelSelectorRequirement(Spec):
    """One expression of a label selector, as in metav1.LabelSelectorRequirement."""

    key: LabelKey = Field(description="The label key the selector applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In and NotIn need values; Exists and DoesNotExist must have none."
    )
    values: list[LabelValue] = Field(
        default_factory=list, max_length=64, description="Values for In and NotIn."
    )

    @field_validator("values")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("values must not repeat")
        return values

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(Spec):
    """A Kubernetes label selector; an empty selector matches everything."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-map-type": "atomic",
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.matchExpressions) || self.matchExpressions.all(e, "
                    "(e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0))",
                    "message": "In and NotIn need values; Exists and DoesNotExist take none",
                }
            ],
        }
    )

    match_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Labels that must all be present with exactly these values.",
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list,
        max_length=32,
        description="Expressions that must all hold.",
    )


# ------------------------------------------------------------------------------ conditions

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(Spec):
    """A status condition in Kubernetes API conventions (metav1.Condition)."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        max_length=316,
        description="Condition type in CamelCase, e.g. Ready or BudgetExceeded.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        max_length=1024,
        description="A CamelCase machine-readable reason for the last transition.",
    )
    message: str = Field(default="", max_length=32768, description="A human-readable explanation.")
    last_transition_time: datetime = Field(description="When the condition last changed status.")
    observed_generation: int = Field(
        default=0, ge=0, description="The metadata.generation this condition was computed from."
    )
