"""PromQL builders: pure functions, one per question, cluster-wide and grouped.

Every query is grouped by namespace/pod/node, so a cycle asks the same handful of questions
however many workloads there are. dcgm-exporter's pod labels arrive as `namespace`/`pod` with
honor_labels, or as `exported_namespace`/`exported_pod` without; `_dcgm_series` folds both.
kube-state-metrics spells Kubernetes labels its own way: `ksm_label_name`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from costgov.adapters.promql_gateways import counter_growth, gateway_increase, gateway_requests

__all__ = [
    "SEVERAL_OBJECTS",
    "SEVERAL_SERIES",
    "counter_growth",
    "gateway_increase",
    "gateway_requests",
    "gpu_allocation",
    "gpu_points",
    "gpu_points_requested",
    "gpu_samples",
    "gpu_samples_history",
    "gpu_samples_of",
    "gpu_utilization",
    "gpu_utilization_series",
    "ksm_label_name",
    "node_gpu_capacity",
    "node_labels",
    "pod_owners",
    "vllm_requests",
    "vllm_serving_gpu_samples",
    "vllm_tokens",
]


def _dur(seconds: int) -> str:
    return f"{int(seconds)}s"


_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_LOWER_THEN_UPPER = re.compile(r"([a-z0-9])([A-Z])")


def ksm_label_name(key: str, prefix: str = "label") -> str:
    """The Prometheus label under which kube-state-metrics exports the Kubernetes label `key`
    (kube_node_labels, kube_namespace_labels, kube_pod_labels: prefix "label").

    kube-state-metrics v2.20.0, internal/store/utils.go: `labelName` is
    prefix + "_" + toSnakeCase(SanitizeLabelName(key)), where SanitizeLabelName replaces every
    character outside [a-zA-Z0-9_] with "_", and toSnakeCase inserts "_" wherever
    `([a-z0-9])([A-Z])` matches (left to right, matches never overlapping) and lower-cases
    the result: `eks.amazonaws.com/capacityType` -> `label_eks_amazonaws_com_capacity_type`,
    an acronym only split after its first capital (`aBC` -> `a_bc`, `ABC` -> `abc`).
    Python's re.sub scans the same way as Go's ReplaceAllString. Two keys of one object that
    come out alike get `_conflictN` suffixes instead; that depends on the object's other
    labels and is not modelled.
    """
    sanitized = _INVALID_LABEL_CHARS.sub("_", key)
    return f"{prefix}_" + _LOWER_THEN_UPPER.sub(r"\1_\2", sanitized).lower()


def _narrow(expr: str, only: str | None) -> str:
    return expr if only is None else f"({expr} and on (namespace, pod) ({only}))"


POD_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
"""A Kubernetes object name (RFC 1123 subdomain): the only pod names a query may carry."""


def _pod_matcher(pods: Iterable[str] | None, label: str = "pod") -> str:
    """`,pod=~"a|b"` (or another `label`) selecting exactly these pod names, or nothing.
    Only Kubernetes names are accepted (their one regex character, ".", is escaped for the
    regex and that backslash for the PromQL string): a label value never reaches a query's
    text else."""
    if pods is None:
        return ""
    names = sorted(set(pods))
    bad = [n for n in names if not POD_NAME.fullmatch(n)]
    if bad:
        raise ValueError(f"not a Kubernetes pod name: {bad[0][:80]!r}")
    escaped = "|".join(n.replace(".", r"\\.") for n in names)
    return f',{label}=~"{escaped}"'


def gpu_allocation(only: str | None = None, pods: Iterable[str] | None = None) -> str:
    """GPUs held by each Running pod, by (namespace, pod, node).

    The node comes from kube_pod_info; when a pod moved nodes inside the lookback, the most
    recently seen node wins (topk by timestamp), so a move never double-counts. `only`, a
    vector by (namespace, pod), narrows every operand to its pods before the joins (the
    joins are the cost: PromQL evaluates both sides of each); `pods` narrows the selectors
    themselves to these names (cheaper still: the rest is never read). A container's
    request is counted once however many series carry it (two kube-state-metrics replicas,
    an old and a new pod object of one name).
    """
    named = _pod_matcher(pods)
    requests = f'kube_pod_container_resource_requests{{resource="nvidia_com_gpu"{named}}}'
    seen = f'timestamp(kube_pod_info{{node!=""{named}}})'  # the samples' own times
    running = f'kube_pod_status_phase{{phase="Running"{named}}}'
    return (
        "sum by (namespace, pod, node) ("
        f"sum by (namespace, pod) (max by (namespace, pod, container) ({_narrow(requests, only)}))"
        " * on (namespace, pod) group_left (node) ("
        f"topk by (namespace, pod) (1, max by (namespace, pod, node) ({_narrow(seen, only)}))"
        " > bool 0)"
        " * on (namespace, pod) group_left () "
        f"max by (namespace, pod) ({_narrow(running, only)})"
        ")"
    )


def gpu_samples(window: int, step: int) -> str:
    """GPUs each pod held on each node, summed over the window's sample points.

    The points are every `step` seconds in (end - window, end]: the range is one second
    short of the window so that the start is excluded whether the range is closed
    (Prometheus 2) or left-open (Prometheus 3) and consecutive windows never share a
    point. GPU-hours = this x step / 3600, computed exactly by the caller (an integer
    count here, no float division in PromQL).
    """
    return f"sum_over_time(({gpu_allocation()})[{_dur(window - 1)}:{_dur(step)}])"


def gpu_points(window: int, step: int, pods: Iterable[str] | None = None) -> str:
    """The allocation join at each of the window's sample points (the points of
    `gpu_samples`), as a range vector: an instant query of it returns every point, so one
    evaluation gives a short window's sum and the GPUs held at its end. At 10,000 pods it
    costs about what one point of the join does (the selectors are read once; the points
    after the first continue where the last stopped), so the steady window needs no
    `gpu_samples_history` beside a separate current-allocation query. `pods`: of these
    names only (the pods `gpu_points_requested` cannot place)."""
    return f"({gpu_allocation(pods=pods)})[{_dur(window - 1)}:{_dur(step)}]"


def gpu_points_requested(window: int, step: int) -> str:
    """`gpu_points` with each pod's node read from its GPU requests, which kube-state-metrics
    labels with the pod's spec.nodeName as it does kube_pod_info: two 10,000-series
    selectors instead of three (docs/benchmarks.md). Exact for a pod whose requests show one
    node at each point. A pod they show on no node while Running (a kube-state-metrics or a
    relabelling without `node` on requests) is a line without `node`; one they show on two
    nodes at one point (a replaced pod object still in the lookback, as after a Prometheus
    restart: no staleness marker) is two lines at that point. `placement` takes both again
    by `gpu_points` for their names (the latest node wins there). Pods not Running are
    left out (`gpu_points` has them hold 0 GPUs), so a Pending pod's request, on no node
    yet, is no line at all."""
    requests = 'kube_pod_container_resource_requests{resource="nvidia_com_gpu"}'
    running = 'kube_pod_status_phase{phase="Running"}'
    join = (
        "sum by (namespace, pod, node) ("
        f"max by (namespace, pod, container, node) ({requests})"
        f" * on (namespace, pod) group_left () (max by (namespace, pod) ({running}) > 0))"
    )
    return f"({join})[{_dur(window - 1)}:{_dur(step)}]"


LOOKBACK_SECONDS = 300
"""Prometheus' default lookback: an instant lookup sees a sample up to 5 minutes old."""


SEVERAL_SERIES = 2**21
"""Added once per Running series of a pod beyond the first in `gpu_samples_history`: a line
of that value or more is a pod several series report (its count is then asked for again).
A pod's GPUs x points never come near it (8 GPUs x MAX_POINTS 2,880 = 23,040)."""


SEVERAL_OBJECTS = 2**32
"""Added once per pod object (uid) of a name beyond the first in `gpu_samples_history`: a
line of that value or more is taken again by the exact join. Lines stay exact integers
(below 2^53) for any pod a node can hold."""


def _span(window: int, rule: bool) -> str:
    """A range one instant short of `window` seconds: a second at a query's evaluation time
    (on the step grid: `gpu_samples`), a millisecond in a recording rule's, which Prometheus
    evaluates at any millisecond (closed ranges of Prometheus 2 then still leave out the
    point one interval back, which the evaluation before counted)."""
    return f"{window * 1000 - 1}ms" if rule else _dur(window - 1)


def gpu_samples_history(
    window: int,
    step: int,
    pods: Iterable[str] | None = None,
    *,
    merged: bool = False,
    rule: bool = False,
) -> str:
    """`gpu_samples` over many sample points at a fraction of the cost (the same sums), for
    every pod object seen once in the window; a pod name seen as several (on several nodes,
    or recreated under its name: a StatefulSet's pod, a training operator's worker) appears
    once per node and uid with its whole total, for `gpu_samples_of` to take again exactly.

    The per-point allocation join is what costs (at 10,000 pods about 0.2 s a point), and
    so does any aggregation inside a subquery (10,000 pods over 24 h of minutes: 19.8 s
    grouping Running per point, 4.9 s per series). One pod object's GPU request cannot
    change (extended resources are not resizable) and it runs on one node, so its GPU
    samples are its GPUs x the points it was Running, joined once with its node. Running
    points are counted per series, then added up with SEVERAL_SERIES for every series
    beyond the first: exact for a pod one series reports, and flagged for a pod several
    report (kube-state-metrics replicas, a restart, a relabelling, un-deduplicated HA
    Prometheus), which `merged=True` counts again with Running taken per point across its
    series (for `pods` only: the cost of that is per series). Its requests gain a `node`
    once scheduled: GPUs are taken per container across those series. A name whose
    requests show several `uid`s (an object never scheduled beside the one that runs: a
    StatefulSet pod recreated with more GPUs, still Pending) adds SEVERAL_OBJECTS, and is
    taken again by the exact join, so no object lends its GPUs to another. The joins are
    on (namespace, pod) alone: `uid` missing from some series (relabelled away) must not
    make a pod cost nothing. Ranges reach one lookback further back than the points, as
    an instant lookup does. `rule`: for a recording rule (promql_rules.py), evaluated off
    the step grid."""
    named = _pod_matcher(pods)
    points = f"[{_span(window, rule)}:{_dur(step)}]"
    reach = f"[{_span(window + LOOKBACK_SECONDS, rule)}]"
    requests = f'kube_pod_container_resource_requests{{resource="nvidia_com_gpu"{named}}}'
    per_container = f"max by (namespace, pod, container) (max_over_time({requests}{reach}))"
    gpus = f"sum by (namespace, pod) ({per_container})"
    phase = f'kube_pod_status_phase{{phase="Running"{named}}}'
    if merged:
        running = f"sum_over_time((max by (namespace, pod) ({phase})){points})"
    else:
        several = f"sum by (namespace, pod) (sum_over_time({phase}{points}) + {SEVERAL_SERIES})"
        per_uid = f"max by (namespace, pod, uid) (max_over_time({requests}{reach}))"
        uids = f"count by (namespace, pod) ({per_uid})"
        running = f"({several} - {SEVERAL_SERIES} + ({uids} - 1) * {SEVERAL_OBJECTS})"
    info = f'last_over_time(kube_pod_info{{node!=""{named}}}{reach})'
    objects = f"max by (namespace, pod, node, uid) ({info})"
    return f"{objects} * on (namespace, pod) group_left () ({gpus} * on (namespace, pod) {running})"


def gpu_samples_of(pods: Iterable[str], window: int, step: int) -> str:
    """`gpu_samples` for these pod names only (the selectors read nothing else): exact
    for pods that moved nodes in the window."""
    return f"sum_over_time(({gpu_allocation(pods=pods)})[{_dur(window - 1)}:{_dur(step)}])"


def node_labels(window: int) -> str:
    """The latest kube_node_labels of every node seen in the window (gone nodes included)."""
    return f"last_over_time(kube_node_labels[{_dur(window)}])"


def node_gpu_capacity(window: int) -> str:
    """GPUs each node has (kube_node_status_capacity), for nodes seen in the window."""
    return (
        "max by (node) (last_over_time("
        f'kube_node_status_capacity{{resource="nvidia_com_gpu"}}[{_dur(window)}]))'
    )


def pod_owners(window: int, pods: Iterable[str] | None = None) -> str:
    """The controller owner (kind and name) of each pod seen in the window (of these
    `pods` names only, when given).

    From kube_pod_owner (owner_kind, owner_name; a pod with no owner has one series with
    both empty); for pods it does not describe (kube_pod_owner dropped or denylisted), from
    kube_pod_info's created_by_kind / created_by_name, which kube-state-metrics fills from
    the pod's controller ownerReference (internal/store/pod.go, metav1.GetControllerOf).
    """
    span, named = _dur(window), _pod_matcher(pods)
    by_owner = (
        "max by (namespace, pod, owner_kind, owner_name) (last_over_time("
        f'kube_pod_owner{{owner_is_controller!="false"{named}}}[{span}]))'
    )
    info = f'last_over_time(kube_pod_info{{created_by_kind!=""{named}}}[{span}])'
    kind = f'label_replace({info}, "owner_kind", "$1", "created_by_kind", "(.+)")'
    name = f'label_replace({kind}, "owner_name", "$1", "created_by_name", "(.+)")'
    created_by = f"max by (namespace, pod, owner_kind, owner_name) ({name})"
    return f"{by_owner} or on (namespace, pod) {created_by}"


GPU_IDENTITY = "gpu, UUID, GPU_I_ID"
"""What tells dcgm-exporter's GPUs apart (GPU_I_ID: a MIG instance), whatever else differs
between two exporter pods reporting one GPU (instance, Hostname, driver version)."""


def _dcgm_series(metric: str, mig: bool = True, pods: Iterable[str] | None = None) -> str:
    """dcgm-exporter's per-GPU series of `metric` (NaN readings dropped by `>= 0`), labelled
    with the workload's namespace and pod: as scraped with honor_labels, or renamed from
    exported_namespace/exported_pod. One series per GPU of a pod, however many series
    report it (an exporter pod and its replacement overlapping, two scrape jobs in both
    styles): merged by the GPU's identity, the first style winning. `mig=False` leaves MIG
    instances out (DCGM does not measure their utilisation: it reports 0). `pods`: only the
    series of pods of these names."""
    only = "" if mig else ', GPU_I_ID=""'
    named = f'{metric}{{exported_pod!=""{only}{_pod_matcher(pods, "exported_pod")}}}'
    plain = f'{metric}{{exported_pod=""{only}{_pod_matcher(pods)}}}'
    merged = f"max by (exported_namespace, exported_pod, {GPU_IDENTITY}) ({named} >= 0)"
    renamed = (
        f'label_replace(label_replace({merged}, "namespace", "$1", "exported_namespace", '
        f'"(.+)"), "pod", "$1", "exported_pod", "(.+)")'
    )
    by = f"namespace, pod, {GPU_IDENTITY}"
    return f"(max by ({by}) ({renamed}) or max by ({by}) ({plain} >= 0))"


def gpu_utilization(window: int, step: int, pods: Iterable[str] | None = None) -> str:
    """Mean GPU utilisation (0-100) per pod over the window: each GPU's mean over the sample
    points, then the mean over the pod's GPUs. NaN readings and gaps are left out of a GPU's
    mean, never turning it into NaN; MIG instances are not measured (no figure, not 0).
    `pods`: these pods only (the selectors read nothing else). Exact however many series
    report a GPU, and costly: the merge happens at every point (10,000 GPUs over 6 h of
    minutes: 13.7 s); `gpu_utilization_series` is the cheap first round."""
    points = f"[{_dur(window - 1)}:{_dur(step)}]"
    series = _dcgm_series("DCGM_FI_DEV_GPU_UTIL", mig=False, pods=pods)
    return f"avg by (namespace, pod) (avg_over_time({series}{points}))"


def gpu_utilization_series(window: int, step: int) -> str:
    """Each dcgm-exporter series' mean utilisation over the window's sample points (MIG
    instances left out), every label kept: where one series reports a GPU over the window
    and no reading was NaN, that mean is `gpu_utilization`'s for the GPU, at a fraction of
    the cost (0.6 s for 10,000 GPUs over 6 h of minutes). The caller merges a pod's GPUs and
    asks `gpu_utilization` again for pods whose GPUs are not all so
    (services/querying.py)."""
    points = f"[{_dur(window - 1)}:{_dur(step)}]"
    return f'avg_over_time(DCGM_FI_DEV_GPU_UTIL{{GPU_I_ID=""}}{points})'


_PROMPT, _GENERATED = "vllm:prompt_tokens_total", "vllm:generation_tokens_total"


def _growth(counter: str, window: int, pods: Iterable[str] | None = None) -> str:
    """How much a counter grew per pod in (end - window, end]: its newest sample in the
    window less its value at the window's start. A pod first seen in the window counts from
    zero, a counter reset from the restart. No extrapolation: exactly the samples' span.
    `pods`: these pod names only."""
    if pods is not None:
        counter = f"{counter}{{{_pod_matcher(pods)[1:]}}}"
    newest = f"sum by (namespace, pod) (last_over_time({counter}[{_dur(window - 1)}]))"
    before = f"sum by (namespace, pod) ({counter} offset {_dur(window)})"
    return f"((({newest} - {before}) >= 0) or {newest})"


def vllm_tokens(window: int, pods: Iterable[str] | None = None) -> str:
    """Prompt plus generated tokens per pod over the window (either alone if one is absent),
    up to the newest sample: measured over the same span as `vllm_serving_gpu_samples`.
    `pods`: these pod names only (the model servers the API shows)."""
    prompt, generated = _growth(_PROMPT, window, pods), _growth(_GENERATED, window, pods)
    return f"({prompt} + {generated}) or {prompt} or {generated}"


def vllm_requests(window: int, pods: Iterable[str] | None = None) -> str:
    """Successful requests per pod (every finished_reason) over the same span."""
    return _growth("vllm:request_success_total", window, pods)


def _newest_token_sample(window: int, step: int, end: int) -> str:
    """When each pod's token counters were last sampled in the window ending at `end`
    (pinned with @, so that it is one value inside another subquery)."""
    sub = f"[{_dur(window - 1)}:{_dur(step)}] @ {int(end)}"
    newest = [
        f"max by (namespace, pod) (max_over_time(timestamp({c}){sub}))"
        for c in (_PROMPT, _GENERATED)
    ]
    return " or ".join(newest)


def vllm_serving_gpu_samples(window: int, step: int, end: int, pods: Iterable[str] | None) -> str:
    """`gpu_samples` for `pods` (those `vllm_tokens` saw count tokens; None: every pod that
    does), up to their counters' newest sample only.

    Unit costs divide this cost by `vllm_tokens` and `vllm_requests`: all three cover the
    same span. When Prometheus' history ends before `end` (ingestion lag, a stopped
    server), the minutes after the last token sample count neither GPU time (which the
    5-minute lookback would otherwise carry on) nor tokens. The selectors read only these
    pods' series: the allocation join at every point of the hour over every GPU pod of a
    cluster took 3.4 s at 10,000 pods, for the few that serve a model.
    """
    fresh = f"({_newest_token_sample(window, step, end)}) >= time()"
    allocation = gpu_allocation(fresh, pods=pods)
    return f"sum_over_time(({allocation})[{_dur(window - 1)}:{_dur(step)}])"
