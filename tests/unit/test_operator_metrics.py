"""The operator's /metrics: names by Prometheus' conventions, every one in docs/operator.md's
one table, budget gauges that follow the budgets (and go with them), and the webhook
server's error answers counted by reason."""

from __future__ import annotations

import functools
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import kopf
import pytest
from aiohttp.test_utils import make_mocked_request

from costgov.adapters.metrics import WEBHOOK_ERROR_REASONS, OperatorMetrics
from costgov.adapters.prometheus import PrometheusSource
from costgov.api import CostPolicy, CostPolicyStatus, TrainingJobBudget, TrainingJobBudgetStatus
from costgov.catalog import load_catalog
from costgov.handlers.serving import SafeWebhookServer
from costgov.services.outcomes import Outcome
from costgov.services.runtime import Runtime
from costgov.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operator.md"


def _exposed(metrics: OperatorMetrics) -> dict[str, str]:
    """Name as scraped -> type (prometheus-client adds `_total` to counters, `_info` to infos)."""
    suffix = {"counter": "_total", "info": "_info"}
    return {f.name + suffix.get(f.type, ""): f.type for f in metrics.registry.collect()}


def _documented() -> dict[str, str]:
    """The rows of the table under "## `/metrics`": `name` | type | ..."""
    section = DOCS.read_text().split("## `/metrics`", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(costgov_[a-z_]+)` \| (\w+) \|", section, flags=re.MULTILINE)
    return dict(rows)


def test_every_metric_is_documented_in_one_table_with_its_type() -> None:
    assert _documented() == _exposed(OperatorMetrics())


def test_names_follow_prometheus_conventions() -> None:
    for name, kind in _exposed(OperatorMetrics()).items():
        assert name.startswith("costgov_")
        assert name.endswith("_total") == (kind == "counter"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name  # durations in the base unit
        assert not re.search(r"_(hours|minutes|milliseconds|percent|cents)\b", name), name


def test_the_new_series_exist_from_the_start() -> None:
    registry = OperatorMetrics().registry
    assert registry.get_sample_value("costgov_leader") == 0  # the runner sets it to 1
    assert registry.get_sample_value("costgov_build_info", {"version": "0.1.0.dev0"}) == 1


def _value(m: OperatorMetrics, name: str, kind: str, ns: str, obj: str) -> float | None:
    return m.registry.get_sample_value(name, {"kind": kind, "namespace": ns, "name": obj})


def test_budget_gauges_keep_unmeasured_figures_and_go_with_their_budget() -> None:
    m = OperatorMetrics()
    m.budget(("CostPolicy", "", "gpu"), 0.8, 1.25, 2, measured=True)
    m.budget(("TrainingJobBudget", "ml", "llama"), 0.5, None, 0, measured=True)
    assert _value(m, "costgov_budget_utilization_ratio", "CostPolicy", "", "gpu") == 0.8
    assert _value(m, "costgov_budget_forecast_ratio", "CostPolicy", "", "gpu") == 1.25
    assert _value(m, "costgov_budget_forecast_ratio", "TrainingJobBudget", "ml", "llama") is None
    m.budget(("CostPolicy", "", "gpu"), None, None, 3, measured=False)  # Prometheus failed
    assert _value(m, "costgov_budget_utilization_ratio", "CostPolicy", "", "gpu") == 0.8
    assert _value(m, "costgov_violations", "CostPolicy", "", "gpu") == 3
    m.prune({("CostPolicy", "", "gpu")})  # llama deleted
    for name in ("costgov_budget_utilization_ratio", "costgov_violations"):
        assert _value(m, name, "TrainingJobBudget", "ml", "llama") is None
    assert _value(m, "costgov_budget_utilization_ratio", "CostPolicy", "", "gpu") == 0.8


def _runtime() -> Runtime:
    settings = Settings()
    return Runtime(
        settings=settings,
        catalog=load_catalog(None),
        source=PrometheusSource(settings),
        kube=None,
    )


def _policy(budget: dict[str, Any] | None) -> CostPolicy:
    spec: dict[str, Any] = {"mode": "audit"} | ({"budget": budget} if budget else {})
    return CostPolicy.model_validate(
        {"apiVersion": "costgov.io/v1alpha1", "kind": "CostPolicy",
         "metadata": {"name": "gpu"}, "spec": spec}
    )  # fmt: skip


def test_a_policy_exports_its_utilisation_and_forecast_over_its_budget() -> None:
    runtime = _runtime()
    status = CostPolicyStatus(forecast=Decimal("1250.00"))
    outcome = Outcome(status, spent=Decimal("800"))
    runtime.record_policy(_policy({"amount": 1000}), outcome)
    m = runtime.metrics
    # 800 / 1000 = 0.8 spent; 1250 / 1000 = 1.25 forecast
    assert _value(m, "costgov_budget_utilization_ratio", "CostPolicy", "", "gpu") == 0.8
    assert _value(m, "costgov_budget_forecast_ratio", "CostPolicy", "", "gpu") == 1.25
    # the budget removed from the policy: no figure left to alert on
    runtime.record_policy(_policy(None), Outcome(CostPolicyStatus(), spent=Decimal("900")))
    assert _value(m, "costgov_budget_utilization_ratio", "CostPolicy", "", "gpu") is None
    assert _value(m, "costgov_budget_forecast_ratio", "CostPolicy", "", "gpu") is None


def _training_budget() -> TrainingJobBudget:
    return TrainingJobBudget.model_validate(
        {"apiVersion": "costgov.io/v1alpha1", "kind": "TrainingJobBudget",
         "metadata": {"name": "llama", "namespace": "ml"},
         "spec": {"amount": 1000, "selector": {"matchLabels": {"team": "ml"}}}}
    )  # fmt: skip


def test_a_forecast_status_no_longer_makes_is_not_exported() -> None:
    # found by review: projectedTotal went null (a running Job's remaining cost unknown)
    # while spend was measured, and the gauge kept 1.5, so the forecast alert kept firing
    runtime, budget = _runtime(), _training_budget()
    status = TrainingJobBudgetStatus(projected_total=Decimal("1500"))
    runtime.record_budget(budget, Outcome(status, spent=Decimal("400")))
    m = runtime.metrics
    # 1,500 / 1,000 = 1.5 forecast; 400 / 1,000 = 0.4 spent
    assert _value(m, "costgov_budget_forecast_ratio", "TrainingJobBudget", "ml", "llama") == 1.5
    status = TrainingJobBudgetStatus(projected_total=None)
    runtime.record_budget(budget, Outcome(status, spent=Decimal("450")))
    assert _value(m, "costgov_budget_forecast_ratio", "TrainingJobBudget", "ml", "llama") is None
    assert _value(m, "costgov_budget_utilization_ratio", "TrainingJobBudget", "ml", "llama") == 0.45
    # Prometheus failing (nothing measured): the last utilisation stays
    runtime.record_budget(budget, Outcome(status, spent=None))
    assert _value(m, "costgov_budget_utilization_ratio", "TrainingJobBudget", "ml", "llama") == 0.45


def test_a_policy_budget_of_zero_exports_no_ratio() -> None:
    runtime = _runtime()
    status = CostPolicyStatus(forecast=Decimal("1250.00"))
    runtime.record_policy(_policy({"amount": 1000}), Outcome(status, spent=Decimal("800")))
    runtime.record_policy(_policy({"amount": 0}), Outcome(status, spent=Decimal("800")))
    m = runtime.metrics
    assert _value(m, "costgov_budget_utilization_ratio", "CostPolicy", "", "gpu") is None
    assert _value(m, "costgov_budget_forecast_ratio", "CostPolicy", "", "gpu") is None


class _Body:
    """An aiohttp request body of fixed bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def iter_chunked(self, size: int) -> Any:
        yield self.data


def _request(path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    return make_mocked_request(
        "POST",
        f"/{path}",
        headers=headers,
        match_info={"id": path},
        payload=_Body(body),  # type: ignore[arg-type]
    )


def _review(uid: str = "u-1") -> dict[str, Any]:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "ml"}}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "batch", "version": "v1", "kind": "Job"},
            "resource": {"group": "batch", "version": "v1", "resource": "jobs"},
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": job,
        },
    }


def _errors(server: SafeWebhookServer) -> dict[tuple[str, str], float]:
    found = {}
    for metric in server.metrics.webhook_errors.collect():
        for s in metric.samples:
            if s.name.endswith("_total") and s.value:  # every series starts at 0
                found[(s.labels["webhook"], s.labels["reason"])] = s.value
    return found


def test_error_and_decision_series_exist_at_zero_from_the_start() -> None:
    # found by review: rate() and increase() cannot see the first increment of a series
    # that appears with it, so 100 errors between two scrapes read as none
    registry = SafeWebhookServer(metrics=OperatorMetrics()).metrics.registry
    value = registry.get_sample_value
    assert value("costgov_webhook_errors_total", {"webhook": "", "reason": "not_found"}) == 0
    assert value("costgov_webhook_errors_total", {"webhook": "jobs", "reason": "invalid"}) == 0
    assert value("costgov_webhook_errors_total", {"webhook": "jobs", "reason": "not_found"}) is None
    for result in ("allowed", "warned", "audited", "denied"):
        labels = {"kind": "Job", "result": result}
        assert value("costgov_admission_decisions_total", labels) == 0


@pytest.mark.asyncio
async def test_webhook_error_answers_are_counted_by_reason() -> None:
    server = SafeWebhookServer(metrics=OperatorMetrics(), insecure=True)
    allowed = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": "u-1", "allowed": True}}  # fmt: skip
    crashed = {**allowed, "response": {"uid": "u-1", "allowed": False,
               "status": {"code": 500, "message": "boom"}}}  # fmt: skip

    def kopf_answers(answer: dict[str, Any]) -> Any:  # kopf's answer, as kopf shapes it
        async def fn(*_: Any, **__: Any) -> dict[str, Any]:
            return answer

        return fn

    async def kopf_raises(*_: Any, **__: Any) -> dict[str, Any]:
        raise LookupError("no such resource")

    body = json.dumps(_review()).encode()
    answered = await server._serve(kopf_answers(allowed), _request("jobs", body))
    assert answered.status == 200 and _errors(server) == {}  # a judged request: no error
    assert (await server._serve(kopf_raises, _request("../etc/passwd"))).status == 404
    too_large = _request("jobs", headers={"Content-Length": str(9 * 1024 * 1024)})
    assert (await server._serve(kopf_raises, too_large)).status == 413
    assert (await server._serve(kopf_raises, _request("jobs", b"{not json"))).status == 400
    pods = _request("pods", body)  # a Job's review sent to /pods: denied with code 400
    denied = (await server._serve(kopf_raises, pods)).text or ""
    assert json.loads(denied)["response"]["status"]["code"] == 400
    assert (await server._serve(kopf_raises, _request("jobs", body))).status == 200
    assert (await server._serve(kopf_answers(crashed), _request("jobs", body))).status == 200
    assert _errors(server) == {
        ("", "not_found"): 1,  # the client's path is not a label
        ("jobs", "too_large"): 1,
        ("jobs", "invalid"): 1,
        ("pods", "invalid"): 1,
        ("jobs", "exception"): 1,
        ("jobs", "internal"): 1,
    }
    assert {reason for _, reason in _errors(server)} == set(WEBHOOK_ERROR_REASONS)


def test_the_last_costgov_resource_deleted_takes_every_cost_figure() -> None:
    # no timer runs once the last costgov resource is gone, so nothing would refresh or
    # prune the figures: they go with it rather than freeze (and alert) forever
    runtime = _runtime()
    m = runtime.metrics
    m.hourly_cost.replace({("ml", "nlp", "train-0"): 55.04})
    m.unpriced.set(2)
    m.budget(("CostPolicy", "", "gpu"), 0.8, 1.25, 2, measured=True)
    m.budget(("CostPolicy", "", "other"), 0.1, None, 0, measured=True)
    # "other" is still there, and a budget named like the deleted policy is another object
    left = {("CostPolicy", "", "gpu"), ("CostPolicy", "", "other")}
    runtime.forget("CostPolicy", "", "gpu", left)
    assert _value(m, "costgov_budget_utilization_ratio", "CostPolicy", "", "gpu") is None
    assert _value(m, "costgov_budget_utilization_ratio", "CostPolicy", "", "other") == 0.1
    labels = {"namespace": "ml", "team": "nlp", "workload": "train-0"}
    assert m.registry.get_sample_value("costgov_hourly_cost_dollars", labels) == 55.04
    runtime.forget("TrainingJobBudget", "ml", "gpu", {("TrainingJobBudget", "ml", "gpu"),
                   ("CostPolicy", "", "other")})  # fmt: skip
    assert m.registry.get_sample_value("costgov_hourly_cost_dollars", labels) == 55.04
    runtime.forget("CostPolicy", "", "other", {("CostPolicy", "", "other")})  # the last one
    assert _value(m, "costgov_budget_utilization_ratio", "CostPolicy", "", "other") is None
    assert m.registry.get_sample_value("costgov_hourly_cost_dollars", labels) is None
    assert m.registry.get_sample_value("costgov_unpriced_pods") == 0


@pytest.mark.asyncio
async def test_costgov_reviews_skip_kopfs_handler_machinery_with_kopfs_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # costgov's judge is called with what kopf binds to its webhook function (the memo and
    # the indexes) and answers as kopf's build_response does (kopf 1.x engines/admission.py)
    from costgov.handlers import serving
    from costgov.handlers.admitting import REVIEW

    seen: list[dict[str, Any]] = []

    async def kopf_fn(*_: Any, **__: Any) -> dict[str, Any]:
        raise AssertionError("kopf's handler machinery is not used for costgov's webhooks")

    memo, indices = object(), {"budgets_idx": {"ml": ["b"]}}
    fn = functools.partial(kopf_fn, memobase=memo, indices=indices)

    async def judge(kw: Any) -> None:
        seen.append({k: kw[k] for k in ("memo", "userinfo", "operation", "dryrun", "namespace")})
        assert kw["budgets_idx"] == {"ml": ["b"]}  # the indexes, by name, as kopf gives them
        review = REVIEW.get()
        assert review is not None  # the whole review, as parsed once by the server
        job = review["request"]["object"]
        if job["metadata"]["name"] == "deny":
            raise kopf.AdmissionError("over budget", code=403)
        if job["metadata"]["name"] == "crash":
            raise RuntimeError("a bug")
        kw["warnings"].append("near the budget")

    monkeypatch.setitem(serving.DIRECT, "jobs", judge)
    server = SafeWebhookServer(metrics=OperatorMetrics(), insecure=True)

    async def answer(name: str) -> dict[str, Any]:
        review = _review()
        review["request"]["object"]["metadata"]["name"] = name
        served = await server._serve(fn, _request("jobs", json.dumps(review).encode()))
        assert served.status == 200
        return json.loads(served.text or "")  # type: ignore[no-any-return]

    ok = await answer("fine")
    assert ok["apiVersion"] == "admission.k8s.io/v1" and ok["kind"] == "AdmissionReview"
    assert ok["response"] == {"uid": "u-1", "allowed": True, "warnings": ["near the budget"]}
    assert seen[0]["memo"] is memo and seen[0]["operation"] == "CREATE"
    assert seen[0]["userinfo"]["username"] and seen[0]["dryrun"] is False
    denied = (await answer("deny"))["response"]
    assert denied["allowed"] is False
    assert denied["status"] == {"message": "over budget", "code": 403}
    crashed = (await answer("crash"))["response"]
    assert crashed["allowed"] is False and crashed["status"] == {"message": "a bug", "code": 500}
    assert _errors(server) == {("jobs", "internal"): 1}  # a denial is not an error
