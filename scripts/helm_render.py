"""Lint, render and validate the Helm chart without a helm binary or a cluster.

    python scripts/helm_render.py [-f VALUES.yaml ...] [--name pgradar] [--namespace default]
                                  [--kube-version 1.37] [--output FILE]

Helm's own Go SDK (the PyPI package helm-python-sdk) lints the chart and renders it, checking
the values against values.schema.json as `helm install` would; every manifest is then validated
offline: Kubernetes kinds with kubernetes-validate against the schemas of --kube-version
(strict: unknown fields are errors), the Prometheus Operator kinds (ServiceMonitor,
PrometheusRule) against the models generated from the operator's CRDs. The manifests go to
stdout (or --output), like `helm template`; a summary and every problem go to stderr.
Exit codes: 0 clean, 1 lint or validation problems, 2 values the chart refuses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml
from kubernetes_validate import utils

CHART = Path(__file__).resolve().parent.parent / "helm" / "pgradar"
KUBE_VERSION = "1.37"
NOTES = "templates/NOTES.txt"
WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error


@dataclass(frozen=True, slots=True)
class Rendered:
    manifests: tuple[dict[str, Any], ...]
    notes: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = self.of_kind(kind)
        return found


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of -f files: maps merge key by key, everything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_values(paths: Iterable[str | Path]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in paths:
        values = merge(values, helm.values_from_yaml(Path(path).read_text()))
    return values


def lint(values: dict[str, Any], chart: Path = CHART, kube_version: str = KUBE_VERSION) -> list[str]:
    """Lint findings of warning severity or worse, as text (info findings are not problems)."""
    report = helm.lint(str(chart), values, strict=True, kube_version=f"v{kube_version}.0")
    return [f"{m['path']}: {m['error'].strip()}" for m in report["messages"] if m["severity"] >= WARNING]


def render(values: dict[str, Any], chart: Path = CHART, name: str = "pgradar", namespace: str = "default") -> Rendered:
    """The chart's manifests as `helm install` would create them (raises helm.HelmError when refused)."""
    with helm.Chart.load(str(chart)) as loaded:
        files = loaded.render(values, name=name, namespace=namespace, is_install=True)
    manifests = [
        doc
        for path, text in sorted(files.items())
        if not path.endswith(NOTES)
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    notes = next((text for path, text in files.items() if path.endswith(NOTES)), "")
    return Rendered(tuple(manifests), notes)


def _operator_model(kind: str) -> Callable[[dict[str, Any]], Any] | None:
    from cloudcoil.models.prometheus_operator import v1

    model = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule, "PodMonitor": v1.PodMonitor}.get(
        kind
    )
    return model.model_validate if model else None


def validate(manifest: dict[str, Any], kube_version: str = KUBE_VERSION) -> str | None:
    """None when the manifest is valid, else one line naming the object and the problem."""
    where = f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"
    if str(manifest.get("apiVersion", "")).startswith("monitoring.coreos.com/"):
        check = _operator_model(manifest["kind"])
        if check is None:
            return f"{where}: no schema for this Prometheus Operator kind"
        try:
            parsed = check(manifest)
        except ValueError as exc:
            return f"{where}: {exc}"
        # The models ignore unknown fields: a field that does not survive the round trip is unknown.
        if parsed.model_dump(by_alias=True, exclude_unset=True, mode="json") != manifest:
            return f"{where}: fields unknown to the {manifest['kind']} CRD"
        return None
    try:
        kubernetes_validate.validate(manifest, kube_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{where}: {'.'.join(map(str, exc.path)) or '(top)'}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return f"{where}: {exc.message}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-f",
        "--values",
        action="append",
        default=[],
        metavar="FILE",
        help="a values file (repeatable; later wins, as with helm -f)",
    )
    parser.add_argument("--name", default="pgradar", help="release name (default pgradar)")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--kube-version", default=KUBE_VERSION, help=f"Kubernetes version (default {KUBE_VERSION})")
    parser.add_argument("--output", metavar="FILE", help="write the manifests here instead of stdout")
    args = parser.parse_args(argv)
    known = sorted({utils.major_minor(v) for v in utils.all_versions()}, key=lambda v: tuple(map(int, v.split("."))))
    if args.kube_version not in known:
        print(
            f"helm_render: --kube-version {args.kube_version}: kubernetes-validate knows {', '.join(known)}",
            file=sys.stderr,
        )
        return 2
    label = " ".join(f"-f {v}" for v in args.values) or "default values"
    try:
        values = load_values(args.values)
    except (OSError, helm.HelmValuesError) as exc:
        print(f"helm_render: {label}: cannot read the values: {exc}", file=sys.stderr)
        return 2
    try:
        rendered = render(values, name=args.name, namespace=args.namespace)
    except helm.HelmError as exc:
        print(f"helm_render: {label}: the chart refuses these values:\n{exc}", file=sys.stderr)
        return 2
    problems = [f"lint: {p}" for p in lint(values, kube_version=args.kube_version)]
    problems += [p for m in rendered.manifests if (p := validate(m, args.kube_version))]
    text = yaml.safe_dump_all(rendered.manifests, sort_keys=False)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    kinds = ", ".join(sorted(f"{m['kind']}/{m['metadata']['name']}" for m in rendered.manifests))
    print(
        f"helm_render: {label}: lint {'clean' if not any(p.startswith('lint') for p in problems) else 'FAILED'}; "
        f"{len(rendered.manifests)} manifests ({kinds}); "
        f"validated against Kubernetes {args.kube_version}: {len(problems)} problem(s)",
        file=sys.stderr,
    )
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
