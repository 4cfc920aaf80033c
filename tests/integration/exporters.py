"""Series written the way the exporters write them, for Prometheus histories.

kube-state-metrics v2.20.0, internal/store/pod.go: every pod series carries namespace, pod
and uid (wrapPodFunc); kube_pod_info adds host_ip, pod_ip, node, created_by_kind and
created_by_name (from the pod's controller ownerReference, metav1.GetControllerOf),
priority_class and host_network; kube_pod_status_phase has one series per phase (Pending,
Succeeded, Failed, Unknown, Running), 1 for the pod's phase and 0 for the others;
kube_pod_container_resource_requests carries container, node, resource (sanitised:
nvidia.com/gpu -> nvidia_com_gpu) and unit (extended resources: integer); kube_pod_owner
carries owner_kind, owner_name and owner_is_controller. An empty label value is no label at
all in Prometheus, so empty values are left out here.

dcgm-exporter (NVIDIA/dcgm-exporter's /metrics with its Kubernetes pod mapper on): one series
per GPU with gpu, UUID, pci_bus_id, device, modelName, Hostname, DCGM_FI_DRIVER_VERSION and
the pod's namespace, pod and container (scraped with honor_labels here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .prom import History

__all__ = ["KSM_TARGET", "PHASES", "dcgm_utilization", "gpu_pod", "ksm_scrapes"]

PHASES = ("Pending", "Succeeded", "Failed", "Unknown", "Running")
KSM_TARGET = {"job": "kube-state-metrics", "instance": "10.0.0.5:8080"}
"""The labels Prometheus adds to a kube-state-metrics scrape."""


def ksm_scrapes(
    h: History,
    times: Iterable[int],
    *,
    namespace: str,
    pod: str,
    uid: str,
    node: str,
    gpus: int,
    created_by: tuple[str, str],
    phase: str = "Running",
    container: str = "main",
    target: Mapping[str, str] = KSM_TARGET,
) -> None:
    """One pod object's series as one kube-state-metrics target is scraped at each of
    `times`: kube_pod_info (node, host_ip and pod_ip once scheduled: `node` empty while it
    is not), its GPU request (`node` once scheduled), the five phases (1 for `phase`).
    `target`: the scrape's labels (job, instance, whatever a relabelling adds)."""
    ids = {**target, "namespace": namespace, "pod": pod, "uid": uid}
    kind, name = created_by
    info = {**ids, "host_network": "false", "created_by_kind": kind, "created_by_name": name}
    request = {**ids, "container": container, "resource": "nvidia_com_gpu", "unit": "integer"}
    if node:
        info.update(node=node, host_ip="10.0.0.10", pod_ip="10.1.0.10")
        request["node"] = node
    for t in times:
        h.add("kube_pod_info", info, 1, t)
        h.add("kube_pod_container_resource_requests", request, gpus, t)
        for p in PHASES:
            h.add("kube_pod_status_phase", {**ids, "phase": p}, int(p == phase), t)


def gpu_pod(
    h: History,
    *,
    namespace: str,
    pod: str,
    node: str,
    gpus: int,
    running: tuple[int, int],
    until: int,
    created_by: tuple[str, str] | None,
    owner: tuple[str, str] | None = None,
    after: str = "Succeeded",
) -> None:
    """A pod's KSM series from `running[0]` until `until` (exclusive; the pod is deleted
    then): Running in [running[0], running[1]), `after` from running[1] on.

    `created_by`: kube_pod_info's created_by_kind/created_by_name, or None when Prometheus
    keeps them not (dropped by relabelling). `owner`: a kube_pod_owner series, or None when
    kube_pod_owner is not collected (--metric-denylist).
    """
    ids = {"namespace": namespace, "pod": pod, "uid": f"uid-{namespace}-{pod}"}
    start, stop = running
    info = {**ids, "host_ip": "10.0.0.10", "pod_ip": "10.1.0.10", "node": node}
    info["host_network"] = "false"
    if created_by is not None:
        info["created_by_kind"], info["created_by_name"] = created_by
    h.span("kube_pod_info", info, 1, start, until)
    requests = {**ids, "container": "main", "node": node, "resource": "nvidia_com_gpu"}
    h.span(
        "kube_pod_container_resource_requests", {**requests, "unit": "integer"}, gpus, start, until
    )
    for phase in PHASES:
        labels = {**ids, "phase": phase}
        h.span("kube_pod_status_phase", labels, 1 if phase == "Running" else 0, start, stop)
        h.span("kube_pod_status_phase", labels, 1 if phase == after else 0, stop, until)
    if owner is not None:
        kind, name = owner
        labels = {**ids, "owner_kind": kind, "owner_name": name, "owner_is_controller": "true"}
        h.span("kube_pod_owner", labels, 1, start, until)


def dcgm_utilization(
    h: History,
    *,
    namespace: str,
    pod: str,
    node: str,
    gpus: int,
    model: str,
    percent: float,
    start: int,
    stop: int,
) -> None:
    """DCGM_FI_DEV_GPU_UTIL for each of a pod's GPUs, `percent` busy in [start, stop)."""
    for gpu in range(gpus):
        labels = {
            "gpu": str(gpu),
            "UUID": f"GPU-{node}-{gpu}",
            "pci_bus_id": f"00000000:{gpu + 16:02X}:00.0",
            "device": f"nvidia{gpu}",
            "modelName": model,
            "Hostname": node,
            "DCGM_FI_DRIVER_VERSION": "580.105.08",
            "namespace": namespace,
            "pod": pod,
            "container": "main",
        }
        h.span("DCGM_FI_DEV_GPU_UTIL", labels, percent, start, stop)
