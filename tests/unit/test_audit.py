"""The periodic audit judges every running workload: one it cannot judge is skipped (and
logged), never the end of the cycle for all the others."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from costgov.domain.catalogs import InstancePrice, PriceCatalog
from costgov.domain.judging import Situation
from costgov.domain.reading import workload_from_object
from costgov.services.inventory import Inventory, JobRecord
from costgov.services.situations import audit_judgements

from .helpers import CATALOG, job

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


class _Exploding(PriceCatalog):
    """A catalog with a bug for one instance type (any engine bug on one object)."""

    def instance(
        self, instance_type: str, provider: str | None = None, region: str | None = None
    ) -> tuple[InstancePrice | None, list[str]]:
        if instance_type == "p4d.24xlarge":
            raise TypeError("a bug the engine hits on this object only")
        return super().instance(instance_type, provider, region)


def _record(obj: dict[str, Any]) -> JobRecord:
    return JobRecord(workload_from_object(obj), active=1, finished=False, started=None,
                     suspended_by=None)  # fmt: skip


def test_one_workload_the_engine_chokes_on_does_not_stop_the_audit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    catalog = _Exploding.model_construct(
        **{k: getattr(CATALOG, k) for k in PriceCatalog.model_fields}
    )
    bad = job("bad", node_selector={"node.kubernetes.io/instance-type": "p4d.24xlarge"})
    inv = Inventory(jobs=(_record(bad), _record(job("good"))))
    found = audit_judgements(inv, Situation(catalog=catalog, now=NOW))
    assert list(found) == [("Job", "ml", "good")]
    assert "could not judge Job/ml/bad" in caplog.text


def test_pods_are_audited_when_admission_judges_them_by_themselves() -> None:
    # a bare pod and an Argo Workflow's pod are judged alone at admission (scoping:
    # Workflow is not a kind whose pods costgov judges through it); a Job's pod is judged
    # through its Job. Pods as kube-apiserver returns them.
    from costgov.services.inventory import pod_record

    def pod(name: str, owner: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": "ml", "uid": f"uid-{name}",
                         "ownerReferences": [owner] if owner else []},
            "spec": {"nodeName": "p5-1",
                     "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                     "containers": [{"name": "t",
                                     "resources": {"limits": {"nvidia.com/gpu": "8"}}}]},
            "status": {"phase": "Running"},
        }  # fmt: skip

    argo = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "wf", "uid": "w",
            "controller": True}  # fmt: skip
    batch = {"apiVersion": "batch/v1", "kind": "Job", "name": "train", "uid": "j",
             "controller": True}  # fmt: skip
    records = [pod_record(pod(n, o)) for n, o in (("bare", None), ("step", argo), ("t", batch))]
    inv = Inventory(pods=tuple(r for r in records if r is not None))
    found = audit_judgements(inv, Situation(catalog=CATALOG, now=NOW))
    assert sorted(found) == [("Pod", "ml", "bare"), ("Pod", "ml", "step")]
