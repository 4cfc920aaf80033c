"""Recording rules for the background catch-up, and the PromQL that reads what they recorded.

A fresh install counts the month behind it from raw samples: at 10,000 pods that is minutes
of Prometheus' time (docs/benchmarks.md), the cost of reading every sample of every pod's
GPU requests, phase and utilisation. Rules evaluated once an `interval` (an hour) record,
per pod, what the catch-up would otherwise compute from those samples over that hour: its
GPU samples on the `step` grid (`promql.gpu_samples_history`, flags for pods seen as
several objects included), each dcgm-exporter series' utilisation sum and count over the
same points, its owner and the nodes' labels. A month is then 720 samples a pod.

Each evaluation covers the grid points in (t - interval, t] exactly (`promql._span`), so
consecutive evaluations partition time; a missed one leaves a gap the catch-up counts from
raw samples (services/recorded.py). Every rule adds a marker series (`EVALUATED`) when it
was evaluated, whatever the cluster held: a rule that failed is a gap too, never $0. Every
series carries the rules' `step` and `interval`, so an operator reads only rules made for
its own sample step, and their `VERSION`, so it reads only what rules of the same expressions
recorded: a change to what they record comes with a new version, and what older rules
recorded is then counted from raw samples, never misread.
"""

from __future__ import annotations

from costgov.adapters.promql import _dur, _span, gpu_samples_history, node_labels, pod_owners

__all__ = [
    "EVALUATED",
    "NAMES",
    "VERSION",
    "VERSION_LABEL",
    "evaluations",
    "group_name",
    "recorded_nodes",
    "recorded_owners",
    "recorded_samples",
    "recorded_utilization",
    "rule_group",
    "uncovered_pods",
]

SAMPLES = "costgov:pod_gpu_samples"
UTIL_SUM = "costgov:gpu_util_sum"
UTIL_COUNT = "costgov:gpu_util_count"
OWNERS = "costgov:pod_owner"
NODES = "costgov:node_labels"
NAMES = (SAMPLES, UTIL_SUM, UTIL_COUNT, OWNERS, NODES)
EVALUATED = "costgov_evaluated"
"""The label of each rule's marker series (value 0, no other labels but the rules')."""
CHECKED = "costgov_checked"
"""The label of `uncovered_pods`' count of the pods it checked."""
VERSION_LABEL = "costgov_rules"
VERSION = "1"
"""The rules' VERSION_LABEL: raise it whenever an expression or a label changes."""

_UTIL = 'DCGM_FI_DEV_GPU_UTIL{GPU_I_ID=""}'
_REQUESTS = 'kube_pod_container_resource_requests{resource="nvidia_com_gpu"}'


def _exprs(step: int, interval: int) -> dict[str, str]:
    points = f"[{_span(interval, True)}:{_dur(step)}]"
    return {
        SAMPLES: gpu_samples_history(interval, step, rule=True),
        UTIL_SUM: f"sum_over_time({_UTIL}{points})",
        UTIL_COUNT: f"count_over_time({_UTIL}{points})",
        OWNERS: pod_owners(interval),
        NODES: node_labels(interval),
    }


def group_name(step: int, interval: int) -> str:
    """The rule group's name, as Prometheus' Rules page shows it."""
    return f"costgov.catchup.v{VERSION}.{step}s.{interval}s"


def rule_group(step: int, interval: int) -> dict[str, object]:
    """The rule group (as Prometheus' rule files and the PrometheusRule CRD spell it) for an
    operator sampling every `step` seconds, evaluated every `interval` seconds (a multiple
    of `step`, at most 1,440 steps: a chunk the catch-up reads holds at most 2,880)."""
    if step <= 0:
        raise ValueError(f"sample step {step}s: expected more than 0")
    if interval < step or interval % step or interval > 1440 * step:
        raise ValueError(
            f"expected a multiple of the sample step ({step}s), at most 1440 steps ({1440 * step}s)"
        )
    marker = f'label_replace(vector(0), "{EVALUATED}", "true", "", "")'
    labels = {VERSION_LABEL: VERSION, "step": str(step), "interval": str(interval)}
    return {
        "name": group_name(step, interval),
        "interval": _dur(interval),
        "rules": [
            {"record": name, "expr": f"({expr}) or {marker}", "labels": dict(labels)}
            for name, expr in _exprs(step, interval).items()
        ],
    }


def _selector(name: str, step: int, interval: int, extra: str, delta_ms: int, at: float) -> str:
    return (
        f'{name}{{{VERSION_LABEL}="{VERSION}",step="{step}",interval="{interval}",'
        f'{EVALUATED}=""{extra}}}'
        f"[{delta_ms}ms] @ {at:.3f}"
    )


def evaluations(step: int, delta_ms: int, at: float) -> str:
    """Every rule's marker samples (one per evaluation) in (at - delta, at]: a range vector
    of each rule and interval made for `step`, of every version (VERSION_LABEL), so that
    rules of another release can be told apart from no rules at all."""
    names = "|".join(NAMES)
    return f'{{__name__=~"{names}",step="{step}",{EVALUATED}="true"}}[{delta_ms}ms] @ {at:.3f}'


def recorded_samples(step: int, interval: int, delta_ms: int, at: float) -> str:
    """`promql.gpu_samples_history` over the evaluations in (at - delta, at]."""
    return f"sum_over_time({_selector(SAMPLES, step, interval, '', delta_ms, at)})"


def recorded_utilization(step: int, interval: int, delta_ms: int, at: float) -> str:
    """`promql.gpu_utilization_series` over the evaluations in (at - delta, at]: each
    series' sum over the points divided by their count (NaN readings make it NaN, as there,
    and the caller asks for such pods again exactly)."""
    total = f"sum_over_time({_selector(UTIL_SUM, step, interval, '', delta_ms, at)})"
    count = f"sum_over_time({_selector(UTIL_COUNT, step, interval, '', delta_ms, at)})"
    return f"{total} / {count}"


def recorded_owners(step: int, interval: int, delta_ms: int, at: float) -> str:
    """`promql.pod_owners` over the evaluations in (at - delta, at]."""
    return f"last_over_time({_selector(OWNERS, step, interval, '', delta_ms, at)})"


def recorded_nodes(step: int, interval: int, delta_ms: int, at: float) -> str:
    """`promql.node_labels` over the evaluations in (at - delta, at]."""
    named = ',node!=""'
    return f"last_over_time({_selector(NODES, step, interval, named, delta_ms, at)})"


def uncovered_pods(step: int, interval: int, at: float) -> str:
    """Per namespace, how many pods the GPU samples recorded at `at` have no line for though
    raw samples show them Running at one of the evaluation's grid points, on a node, with a
    GPU request: rules that did not see every pod (a PrometheusRule under the Prometheus
    Operator's `enforcedNamespaceLabel`, rules evaluated where only some of the series are).
    Plus one series labelled `CHECKED`: how many pods there were to check (none: the hour
    proves nothing). No namespace when the record covers them all: the rule writes a line
    for every such pod (its phase, node and request ranges reach at least as far back as
    these). The record is read
    at `at` alone (`[1ms]`): another evaluation minutes before (another offset) is not it."""
    span = f"[{interval}s] @ {at:.3f}"
    running = (
        'max by (namespace, pod) (max_over_time(kube_pod_status_phase{phase="Running"}'
        f"[{_span(interval, True)}:{_dur(step)}] @ {at:.3f})) > 0"
    )
    placed = f'max by (namespace, pod) (last_over_time(kube_pod_info{{node!=""}}{span}))'
    requested = f"max by (namespace, pod) (last_over_time({_REQUESTS}{span}))"
    recorded = (
        f'last_over_time({SAMPLES}{{{VERSION_LABEL}="{VERSION}",step="{step}",'
        f'interval="{interval}",{EVALUATED}=""}}[1ms] @ {at:.3f})'
    )
    pods = (
        f"({running}) * on (namespace, pod) group_left () {placed}"
        f" * on (namespace, pod) group_left () {requested}"
    )
    checked = f'label_replace(count({pods}), "{CHECKED}", "true", "", "")'
    return f"count by (namespace) ({pods} unless on (namespace, pod) {recorded}) or {checked}"
