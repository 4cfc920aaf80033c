"""The `costgov` command line: estimate (offline CI gate), report, run (the operator), crds."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from costgov import __version__, cli_rules
from costgov.adapters.manifests import ManifestReadError, read_documents
from costgov.api.crdgen import crds
from costgov.api.fields import parse_duration
from costgov.catalog import CatalogError, load_catalog
from costgov.domain.gateways import check_team_labels, check_team_namespaces
from costgov.domain.scoping import DEFAULT_OPERATOR_NAMESPACE
from costgov.services.estimating import InputError, Options, estimate_documents
from costgov.services.rendering import render_json, render_table
from costgov.settings import Settings

if TYPE_CHECKING:
    from costgov.services.reporting import SpendReport

__all__ = ["main"]

EXIT_OK, EXIT_DENIED, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="costgov",
        description="Price GPU/AI workloads and enforce dollar budgets on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"costgov {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _estimate_parser(sub)
    _report_parser(sub)
    _prices_parser(sub)
    _run_parser(sub)
    _crds_parser(sub)
    cli_rules.add_parser(sub)
    return parser


def _estimate_parser(sub: Any) -> None:
    est = sub.add_parser(
        "estimate",
        help="price manifests offline and judge them against CostPolicies (a CI gate)",
        description="Price Jobs, Pods, Deployments, StatefulSets, TrainingJobBudgets and "
        "InferenceDeployments from YAML, and judge them against the CostPolicies among the "
        "inputs or given with --policy. Exit codes: 0 nothing denied, 1 an enforce-mode "
        "policy denies something, 2 bad input.",
    )
    est.add_argument(
        "-f",
        "--filename",
        dest="paths",
        action="append",
        required=True,
        type=Path,
        metavar="PATH",
        help="a YAML file or directory, or - for standard input (repeatable)",
    )
    est.add_argument(
        "--policy",
        dest="policies",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="CostPolicy file or directory (repeatable)",
    )
    est.add_argument(
        "--pricing",
        type=Path,
        metavar="FILE",
        help="a pricing file that overrides or extends the bundled catalog",
    )
    est.add_argument(
        "--assume-instance-type",
        metavar="TYPE",
        help="price GPU work that names no instance type or GPU model as TYPE "
        "(e.g. p5.48xlarge); otherwise it is unpriced, and enforce-mode policies deny it",
    )
    est.add_argument(
        "--operator-namespace",
        default=DEFAULT_OPERATOR_NAMESPACE,
        metavar="NS",
        help="costgov's namespace, never governed (like kube-system); default %(default)s",
    )
    est.add_argument("-o", "--output", choices=("table", "json"), default="table")
    est.add_argument(
        "--now",
        type=datetime.fromisoformat,
        metavar="RFC3339",
        help="judge approvals' expiry at this time instead of now",
    )


def _report_parser(sub: Any) -> None:
    rep = sub.add_parser(
        "report",
        help="spend and chargeback by namespace or namespace label, from Prometheus",
        description="Spend over a window, grouped by namespace or by a namespace label "
        "(e.g. --by team), priced with the catalog. Exit 2 when Prometheus cannot answer.",
    )
    rep.add_argument(
        "--prometheus-url",
        default=None,
        metavar="URL",
        help="Prometheus base URL (default: $COSTGOV_PROMETHEUS_URL or :9090)",
    )
    rep.add_argument(
        "--window",
        default="30d",
        metavar="DURATION",
        help="how far back from --end, e.g. 24h, 7d, 30d (default 30d)",
    )
    rep.add_argument("--end", type=datetime.fromisoformat, metavar="RFC3339",
                     help="end of the window (default: now)")  # fmt: skip
    rep.add_argument(
        "--by",
        default="namespace",
        metavar="namespace|LABEL",
        help="group by namespace (default) or by this namespace label",
    )
    rep.add_argument("--step", default="60s", metavar="DURATION",
                     help="sampling resolution of GPU allocation (default 60s)")  # fmt: skip
    rep.add_argument("--pricing", type=Path, metavar="FILE")
    _api_arguments(rep)
    rep.add_argument("-o", "--output", choices=("table", "csv", "json", "focus"), default="table",
                     help="focus: FinOps FOCUS 1.2 CSV, one row per workload per charge period")  # fmt: skip
    rep.add_argument(
        "--recommendations",
        action="store_true",
        help="add right-sizing and model-server advice with monthly dollars for the GPU "
        "workloads running at --end, from GPU use and vLLM load over the window "
        "(docs/recommendations.md); with -o csv, the recommendations alone",
    )
    rep.add_argument(
        "--focus-period",
        choices=("window", "day"),
        default="window",
        help="-o focus charge periods: the window (split where it crosses a month, since a "
        "FOCUS row belongs to one billing period) or each UTC day",
    )


def _prices_parser(sub: Any) -> None:
    prices = sub.add_parser(
        "prices",
        help="list the price catalog (filter by provider, region, GPU model)",
        description="The bundled price catalog (merged with --pricing), each entry with its "
        "source and date. Exit 2 on an unknown GPU model or a bad pricing file.",
    )
    prices.add_argument("--provider", metavar="NAME", help="aws, gcp, azure or onprem")
    prices.add_argument("--region", metavar="REGION", help="e.g. us-east-1")
    prices.add_argument("--gpu", metavar="MODEL", help="e.g. H100, H200, B200, MI300X")
    prices.add_argument("--pricing", type=Path, metavar="FILE")
    prices.add_argument("-o", "--output", choices=("table", "json"), default="table")


def _prices(args: argparse.Namespace) -> int:
    from costgov.services.pricelists import PriceFilter, render_prices

    try:
        catalog = load_catalog(args.pricing)
        wanted = PriceFilter(args.provider, args.region, args.gpu)
        sys.stdout.write(render_prices(catalog, wanted, args.output))
    except (CatalogError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def _run_parser(sub: Any) -> None:
    runp = sub.add_parser(
        "run",
        help="run the operator (reads COSTGOV_* environment variables)",
        description="Run the operator: watches, reconciles, serves the admission webhook, "
        "/metrics and /healthz. Settings come from COSTGOV_* environment variables "
        "(see docs/operator.md); these flags override them.",
    )
    runp.add_argument("--prometheus-url", metavar="URL")
    runp.add_argument("--pricing-file", type=Path, metavar="FILE")
    runp.add_argument("--webhook-port", type=int, metavar="PORT")
    runp.add_argument("--metrics-port", type=int, metavar="PORT")
    runp.add_argument(
        "--namespace",
        dest="namespaces",
        action="append",
        metavar="NS",
        help="watch only these namespaces (repeatable); default cluster-wide",
    )


def _crds_parser(sub: Any) -> None:
    crd = sub.add_parser("crds", help="print (or write) the CustomResourceDefinitions as YAML")
    crd.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="write one file per CRD into DIR instead of printing",
    )
    crd.add_argument(
        "--check",
        action="store_true",
        help="with --output-dir: exit 1 when the files differ from the models",
    )


def _crd_yaml(crd: dict[str, object]) -> str:
    header = "# Generated from costgov.api by `make manifests`; do not edit.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=100)


def _crds(args: argparse.Namespace) -> int:
    if args.output_dir is None:
        sys.stdout.write("---\n".join(_crd_yaml(crd) for crd in crds()))
        return EXIT_OK
    drift = []
    for crd in crds():
        path = args.output_dir / f"{crd['metadata']['name']}.yaml"
        text = _crd_yaml(crd)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                drift.append(str(path))
        else:
            args.output_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if drift:
        print(
            "CRDs are out of date; run `make manifests`:\n  " + "\n  ".join(drift), file=sys.stderr
        )
        return EXIT_DENIED
    return EXIT_OK


def _estimate(args: argparse.Namespace) -> int:
    try:
        catalog = load_catalog(args.pricing)
        unreadable: list[str] = []
        docs = read_documents(args.paths, unreadable)
        policies = read_documents(args.policies)
        now = args.now or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        options = Options(args.assume_instance_type, args.operator_namespace)
        report = estimate_documents(
            docs, catalog, now=now, extra_policies=policies, options=options, unreadable=unreadable
        )
    except (CatalogError, ManifestReadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InputError as exc:
        print("error: the input cannot be estimated:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for line in report.unreadable:
        print(f"warning: skipped {line}", file=sys.stderr)
    if not report.workloads and not report.policies and not report.skipped:
        print("error: no workloads or CostPolicies found in the input", file=sys.stderr)
        return EXIT_BAD_INPUT
    sys.stdout.write(render_json(report) if args.output == "json" else render_table(report))
    return report.exit_code


def _api_arguments(rep: Any) -> None:
    """The report's options for hosted-API spend (docs/api-spend.md)."""
    rep.add_argument(
        "--api-team-label",
        action="append",
        default=[],
        metavar="LABEL",
        help="a gateway label that names who spent (repeat: the first present wins); default "
        "each gateway's own (LiteLLM team_alias, team, api_key_alias, user; Kong consumer, "
        "workspace; OpenTelemetry gateways gateway, route)",
    )
    rep.add_argument(
        "--api-namespace",
        action="append",
        default=[],
        metavar="TEAM=NAMESPACE",
        help="count a gateway team's hosted-API spend in this namespace (repeat); without any, "
        "API spend is grouped by team",
    )


def _window(text: str) -> timedelta:
    if text.endswith("d") and text[:-1].isdigit():
        return timedelta(days=int(text[:-1]))
    return timedelta(seconds=parse_duration(text))


def _report(args: argparse.Namespace) -> int:
    from costgov.adapters.prometheus import PrometheusSource
    from costgov.services.focus import charge_periods, focus_csv
    from costgov.services.report_rendering import render
    from costgov.services.reporting import build_report

    try:
        overrides = {"prometheus_url": args.prometheus_url} if args.prometheus_url else {}
        settings = Settings(**overrides)
        end = args.end or datetime.now(UTC)
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        start = end - _window(args.window)
        catalog = load_catalog(args.pricing)
        source, team_labels = PrometheusSource(settings), check_team_labels(args.api_team_label)
        namespaces = _team_namespaces(args.api_namespace)
        periods = [(start, end)]
        if args.output == "focus":
            periods = charge_periods(start, end, daily=args.focus_period == "day")

        async def build(s: datetime, e: datetime) -> SpendReport:
            return await build_report(
                source, catalog, start=s, end=e, by=args.by,
                step_seconds=parse_duration(args.step), team_labels=team_labels,
                namespaces=namespaces, advise=args.recommendations and args.output != "focus",
            )  # fmt: skip

        reports = [asyncio.run(build(s, e)) for s, e in periods]
    except (ValueError, CatalogError, ValidationError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.output != "focus":
        sys.stdout.write(render(reports[0], args.output))
        if args.output == "csv":  # the CSV holds rows only: its warnings go to stderr
            for warning in reports[0].warnings:
                print(f"warning: {warning}", file=sys.stderr)
        return EXIT_OK
    if args.recommendations:
        print("--recommendations: not part of a FOCUS export, left out", file=sys.stderr)
    sys.stdout.write(focus_csv(reports))
    for report in reports:
        for note in (*report.unpriced, *report.api_unpriced):
            print(f"unpriced, no FOCUS row ({report.start:%Y-%m-%d}): {note}", file=sys.stderr)
    return EXIT_OK


def _team_namespaces(pairs: list[str]) -> dict[str, str] | None:
    """--api-namespace TEAM=NAMESPACE pairs, or None when none were given."""
    if not pairs:
        return None
    out: dict[str, str] = {}
    for pair in pairs:
        team, sep, namespace = pair.partition("=")
        if not sep or not team or not namespace:
            raise ValueError(f"--api-namespace {pair!r}: expected TEAM=NAMESPACE")
        if out.get(team, namespace) != namespace:
            raise ValueError(f"--api-namespace: team {team!r} mapped to both {out[team]!r} "
                             f"and {namespace!r}")  # fmt: skip
        out[team] = namespace
    try:
        return check_team_namespaces(out)
    except ValueError as exc:
        raise ValueError(f"--api-namespace: {exc}") from exc


def _run(args: argparse.Namespace) -> int:
    from costgov.handlers.running import main as run_main

    overrides = {
        k: v
        for k in ("prometheus_url", "pricing_file", "webhook_port", "metrics_port", "namespaces")
        if (v := getattr(args, k)) is not None
    }
    try:
        settings = Settings(**overrides)
        load_catalog(settings.pricing_file)
    except (ValidationError, CatalogError) as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return run_main(settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    commands = {"estimate": _estimate, "report": _report, "prices": _prices, "run": _run}
    commands["rules"] = cli_rules.command
    return commands.get(args.command, _crds)(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
