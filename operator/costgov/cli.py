"""The `costgov` command line: estimate (offline CI gate) and crds."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import yaml

from costgov import __version__
from costgov.adapters.manifests import ManifestReadError, read_documents
from costgov.api.crdgen import crds
from costgov.catalog import CatalogError, load_catalog
from costgov.services.estimating import InputError, estimate_documents
from costgov.services.rendering import render_json, render_table

__all__ = ["main"]

EXIT_OK, EXIT_DENIED, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="costgov",
        description="Price GPU/AI workloads and enforce dollar budgets on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"costgov {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
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
        help="a YAML file or directory (repeatable)",
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
    est.add_argument("-o", "--output", choices=("table", "json"), default="table")
    est.add_argument(
        "--now",
        type=datetime.fromisoformat,
        metavar="RFC3339",
        help="judge approvals' expiry at this time instead of now",
    )
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
    return parser


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
        docs = read_documents(args.paths)
        policies = read_documents(args.policies)
        now = args.now or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        report = estimate_documents(docs, catalog, now=now, extra_policies=policies)
    except (CatalogError, ManifestReadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InputError as exc:
        print("error: the input cannot be estimated:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not report.workloads and not report.policies:
        print("error: no workloads or CostPolicies found in the input", file=sys.stderr)
        return EXIT_BAD_INPUT
    sys.stdout.write(render_json(report) if args.output == "json" else render_table(report))
    return report.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "estimate":
        return _estimate(args)
    return _crds(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
