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
