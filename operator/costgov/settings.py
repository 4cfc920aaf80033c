"""The operator's settings: one object, read once at start (environment `COSTGOV_*` or flags)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from costgov.domain.gateways import check_team_labels, check_team_namespaces

__all__ = ["DEFAULT_TRUSTED_CONTROLLERS", "Settings"]

DEFAULT_TRUSTED_CONTROLLERS = (
    "system:kube-controller-manager",
    "system:serviceaccount:kube-system:job-controller",
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:cronjob-controller",
    # The projects' own install manifests (namespace and service account as they ship):
    "system:serviceaccount:kubeflow:training-operator",
    "system:serviceaccount:mpi-operator:mpi-operator",
    "system:serviceaccount:jobset-system:jobset-controller-manager",
    "system:serviceaccount:lws-system:lws-controller-manager",
    "system:serviceaccount:ray-system:kuberay-operator",
)
"""kube-controller-manager, with and without --use-service-account-credentials; the
Kubeflow training and MPI operators, JobSet, LeaderWorkerSet and KubeRay controllers as their
install manifests name them (installed elsewhere: set COSTGOV_TRUSTED_CONTROLLERS)."""


class Settings(BaseSettings):
    """Everything `costgov run` can be told. Environment variables are `COSTGOV_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="COSTGOV_", frozen=True, extra="forbid")

    prometheus_url: str = Field(default="http://127.0.0.1:9090", description="Prometheus base URL.")
    prometheus_bearer_token: SecretStr | None = Field(default=None, description="Bearer token.")
    prometheus_bearer_token_file: Path | None = Field(
        default=None, description="File with a bearer token (re-read at start)."
    )
    prometheus_username: str | None = Field(default=None, description="Basic auth user.")
    prometheus_password: SecretStr | None = Field(default=None, description="Basic auth password.")
    prometheus_ca_file: Path | None = Field(default=None, description="CA bundle for TLS.")
    prometheus_insecure_skip_verify: bool = Field(default=False)
    query_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    query_retries: int = Field(default=2, ge=0, le=10)
    reconcile_interval_seconds: float = Field(default=60.0, ge=1, le=3600)
    sample_step_seconds: int = Field(
        default=60, ge=15, le=3600, description="Resolution of spend integration."
    )
    catchup_chunk_seconds: int = Field(
        default=86400,
        ge=60,
        le=31 * 86400,
        description="The most history one chunk of the background catch-up counts (a "
        "fresh install over a month, a long Prometheus outage). Chunks start at an hour and "
        "adapt: halved after one fails, grown while their queries answer within half the "
        "query timeout, up to this.",
    )
    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty means cluster-wide."
    )
    operator_namespace: str = Field(
        default="costgov-system",
        description="The operator's namespace: never governed, like kube-system.",
    )
    operator_username: str | None = Field(
        default=None,
        description="costgov's own identity as the apiserver sees it (e.g. "
        "system:serviceaccount:costgov-system:costgov); asked of the apiserver at start "
        "(SelfSubjectReview) when not set. Only this identity resumes Jobs costgov suspended.",
    )
    trusted_controllers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TRUSTED_CONTROLLERS),
        description="Identities whose Pods and ReplicaSets (with a controller owner) are "
        "judged through their owner (a Job, Deployment or StatefulSet admission judged).",
    )
    pricing_file: Path | None = Field(default=None, description="User pricing file.")
    api_team_labels: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="LLM-gateway labels that name who spent, the first present wins "
        "(default: each gateway's own, docs/api-spend.md).",
    )
    api_namespaces: dict[str, str] = Field(
        default_factory=dict,
        description='Gateway team -> namespace, e.g. {"nlp": "ml-research"}; empty: a team '
        "named like a namespace of the cluster is that namespace's. Spend of other teams "
        "belongs only to policies over the whole cluster.",
    )
    webhook_host: str = Field(default="0.0.0.0", description="Address the webhook listens on.")
    webhook_port: int = Field(default=9443, ge=0, le=65535)
    webhook_cert_file: Path | None = None
    webhook_key_file: Path | None = None
    leader_lease: str | None = Field(
        default=None,
        description="Name of the coordination.k8s.io Lease (in operator_namespace) the "
        "replicas elect their leader with: only the holder reconciles, every replica serves "
        "admission. Unset: this instance reconciles alone (one replica only).",
    )
    leader_lease_seconds: int = Field(
        default=15,
        ge=3,
        le=300,
        description="Lease duration; renewal every third, a leader stops when a renewal is "
        "two thirds late, candidates retry every 2/15.",
    )
    identity: str | None = Field(
        default=None,
        description="This replica's holderIdentity (the chart passes the pod name); "
        "default: host name and process id.",
    )
    anomaly_detection: bool = Field(
        default=True, description="Judge each hour's spend against its baseline (hourly)."
    )
    anomaly_sigma: float = Field(
        default=2.0,
        ge=0.5,
        le=10,
        description="An hour's spend is anomalous above its "
        "baseline mean plus this many standard deviations ...",
    )
    anomaly_min_dollars: float = Field(
        default=10.0, ge=0, description="... and at least this many dollars above the mean."
    )
    anomaly_history_days: int = Field(
        default=14,
        ge=1,
        le=35,
        description="Days of hourly history a baseline is drawn "
        "from (two weeks and more: the same hour of the week; less: every earlier hour).",
    )
    advice_window_hours: int = Field(
        default=24,
        ge=1,
        le=24 * 14,
        description="How far back recommendations look (GPU use, vLLM load): "
        "docs/recommendations.md.",
    )
    advice_refresh_minutes: int = Field(
        default=15, ge=1, le=1440, description="How often the evidence is read again."
    )
    metrics_port: int = Field(default=8080, ge=0, le=65535)
    liveness_port: int = Field(default=8081, ge=0, le=65535)

    @field_validator("api_team_labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return check_team_labels(value)

    @field_validator("api_namespaces")
    @classmethod
    def _namespaces(cls, value: dict[str, str]) -> dict[str, str]:
        return check_team_namespaces(value)
