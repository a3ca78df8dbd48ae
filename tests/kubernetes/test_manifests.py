"""Every overlay renders, validates against Kubernetes' own schemas, and
passes checkov's policies."""

import re
import subprocess

import kubernetes_validate
import pydantic
import pytest
from cloudcoil.models.prometheus_operator import v1 as prometheus_operator
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, all_versions

from .conftest import KUBERNETES_DIR, OVERLAYS, PROJECT_NAME, tool

# Kinds of custom resources (the Gateway API's), which have no schema in
# kubernetes-validate and none this project can ship: not validated. Any
# other kind without a schema is a typo or a wrong apiVersion, and fails (the
# kubernetes-validate command only warns).
CUSTOM_KINDS = {
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
}
# The Prometheus Operator's kinds (components/monitoring/): validated against
# models generated from the operator's CRDs (cloudcoil-models-prometheus-
# operator), with unknown fields refused as --strict refuses them. The rules
# inside the PrometheusRule are promtool's to check (tests/monitoring/).
OPERATOR_KINDS = {
    ("monitoring.coreos.com/v1", "PodMonitor"): prometheus_operator.PodMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): prometheus_operator.PrometheusRule,
}


def newest_minor_versions(count: int = 3) -> list[str]:
    minors = {tuple(int(part) for part in version.split(".")[:2]) for version in all_versions()}
    return [f"{major}.{minor}" for major, minor in sorted(minors)[-count:]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_whole_stack(rendered, overlay):
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in rendered[overlay]}
    for name in ("nginx", "web", "asgi"):
        assert ("Deployment", name) in names
        assert ("Service", name) in names
        assert ("PodDisruptionBudget", name) in names
    # The worker: no Service (nothing connects to it), and no autoscaler
    # (worker.yaml says why); the schedules are its own, not CronJobs.
    assert {("Deployment", "worker"), ("PodDisruptionBudget", "worker")} <= names
    assert ("Job", "migrate") in names
    assert {("HorizontalPodAutoscaler", "web"), ("HorizontalPodAutoscaler", "asgi")} <= names
    if overlay == "local":
        assert {("Deployment", "db"), ("Deployment", "redis")} <= names
    else:
        assert {("Ingress", PROJECT_NAME), ("HTTPRoute", PROJECT_NAME)} <= names
        # components/monitoring
        assert {("PodMonitor", "web"), ("PodMonitor", "asgi"), ("PodMonitor", "worker")} <= names
        assert ("PrometheusRule", PROJECT_NAME) in names


def test_validation_covers_the_three_newest_versions():
    versions = newest_minor_versions()
    assert len(versions) == 3
    assert versions[-1] >= "1.35", versions


@pytest.mark.parametrize("version", newest_minor_versions())
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_strictly(rendered, overlay, version):
    """kubernetes-validate --strict: unknown fields are errors too."""
    errors = []
    for doc in rendered[overlay]:
        what = f"{doc['kind']} {doc['metadata']['name']}"
        model = OPERATOR_KINDS.get((doc["apiVersion"], doc["kind"]))
        if model:
            try:
                model.model_validate(doc, extra="forbid")
            except pydantic.ValidationError as error:
                errors.append(f"{what}: {error}")
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except SchemaNotFoundError:
            if (doc["apiVersion"], doc["kind"]) not in CUSTOM_KINDS:
                errors.append(f"{what}: no schema for {doc['apiVersion']} {doc['kind']}")
        except ValidationError as error:
            errors.append(f"{what}: {'.'.join(map(str, error.path))}: {error.message}")
    assert errors == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_finds_nothing(rendered_files, overlay):
    """Zero failed checks; the skipped ones, with their reasons, are in
    deploy/kubernetes/.checkov.yaml."""
    result = subprocess.run(
        [
            tool("checkov"),
            "--config-file",
            KUBERNETES_DIR / ".checkov.yaml",
            "--file",
            rendered_files[overlay],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    summary = re.search(r"Passed checks: (\d+), Failed checks: (\d+)", result.stdout)
    assert summary, result.stdout + result.stderr
    assert int(summary[1]) > 100, result.stdout
    assert (int(summary[2]), result.returncode) == (0, 0), result.stdout
