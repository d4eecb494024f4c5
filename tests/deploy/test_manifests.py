"""The Kubernetes deployment, checked offline: both overlays build, every object validates against its schema (the
Kubernetes API's, or the vendored CRD schemas of Strimzi, KEDA and the Prometheus operator), every setting a
manifest sets exists in the code, the ACLs are exactly each service's topics, and the Dockerfiles lint clean.

No cluster runs here (no container runtime); test_manifests_run.py runs the pods' commands instead.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from learnerfit.runtime.settings import setting_rows
from learnerfit.catalog import CATALOG
from learnerfit.generate.cluster_check import problems, site_provided
from learnerfit.generate.manifests import k8s_name, spec_of, topic_access

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SCHEMAS = K8S / "schemas"
KUBERNETES_VERSION = "1.33.0"
CUSTOM_GROUPS = ("kafka.strimzi.io", "keda.sh", "monitoring.coreos.com", "cert-manager.io")


def build(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed to build the overlays"
    built = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True,
                           check=True, timeout=120).stdout
    return [o for o in yaml.safe_load_all(built) if o]


@pytest.fixture(scope="module", params=["dev-cpu", "gpu", "site-example"])
def overlay(request) -> tuple[str, list[dict]]:
    return request.param, build(request.param)


def test_every_object_validates_against_its_schema(overlay):
    name, objects = overlay
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ConfigMap", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount", "Kafka",
            "KafkaNodePool", "KafkaTopic", "KafkaUser", "ScaledObject", "ServiceMonitor"} <= kinds
    for obj in objects:
        group, _, version = obj["apiVersion"].rpartition("/")
        where = f"{name}: {obj['kind']}/{obj['metadata']['name']}"
        if group in CUSTOM_GROUPS:
            schema = json.loads((SCHEMAS / f"{group}_{obj['kind'].lower()}_{version}.json").read_text())
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
            assert not errors, f"{where}: {errors[0].message} at {'/'.join(map(str, errors[0].path))}"
        else:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{where}: {error.message} at {'/'.join(map(str, error.path))}")


def test_a_schema_check_catches_a_misspelt_field():
    """The validation above can fail: a typo in a Deployment and in a KafkaTopic are both caught."""
    deployment = next(o for o in build("dev-cpu") if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    topic = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaTopic", "metadata": {"name": "x"},
             "spec": {"partitions": "four"}}
    schema = json.loads((SCHEMAS / "kafka.strimzi.io_kafkatopic_v1.json").read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(topic))


def _site_provided(name: str) -> set[tuple[str, str]]:
    listed = K8S / "overlays" / name / "site-provided.yaml"
    return site_provided(listed) if listed.is_file() else set()


def test_every_pod_spec_is_whole_as_the_api_server_sees_it_and_everything_it_names_exists(overlay):
    """What schemas cannot see: unique names in the lists the API server keys by name, every mount backed by a
    volume, every ConfigMap, Secret, claim and account a pod names rendered, made by an operator, or on the site's
    list of what it creates itself."""
    name, objects = overlay
    assert problems(objects, _site_provided(name)) == []


def test_the_structural_check_catches_an_index_patch_and_an_object_nobody_creates():
    """The gpu overlay as it was: its model-cache patch replaced volumes/2, which the security patch had made the
    config volume (two volumes named model-cache, a config mount with no volume; the API server refuses both).
    And a Secret left off the site's list."""
    objects = build("gpu")
    generator = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "generator")
    volumes = generator["spec"]["template"]["spec"]["volumes"]
    config = next(i for i, v in enumerate(volumes) if v["name"] == "config")
    volumes[config] = {"name": "model-cache", "persistentVolumeClaim": {"claimName": "model-cache"}}
    provided = _site_provided("gpu") - {("Secret", "oracle-api-key")}
    found = problems(objects, provided)
    assert "Deployment/generator: two volumes named 'model-cache'" in found
    assert "Deployment/generator container generator: mounts volume 'config', which the pod does not have" in found
    assert sum("'oracle-api-key', which neither" in line for line in found) == 2  # refiner, style aligner
    assert len(found) == 4


def _containers(objects: list[dict]) -> dict[str, dict]:
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]
            for o in objects if o["kind"] == "Deployment"}


def test_every_setting_a_manifest_sets_exists_in_the_code_and_each_service_is_wired(overlay):
    name, objects = overlay
    containers = _containers(objects)
    # Generated ConfigMaps carry a content hash in their names; the service's label names them.
    configs = {o["metadata"]["labels"]["app.kubernetes.io/name"]: o["data"]["config.yaml"] for o in objects
               if o["kind"] == "ConfigMap" and "config.yaml" in o["data"]}
    for service in CATALOG.names():
        spec, container = spec_of(service), containers[k8s_name(service)]
        known = {env for env, _, _ in setting_rows(spec.settings)}
        set_by_env = {e["name"] for e in container["env"] if e["name"].startswith("LEARNERFIT_")} - {
            "LEARNERFIT_CONFIG"}
        assert set_by_env <= known, f"{name}/{service}: unknown settings {sorted(set_by_env - known)}"
        # The ConfigMap's file loads into the settings class (unknown keys are refused there: extra="forbid").
        config = yaml.safe_load(configs[k8s_name(service)])
        settings = spec.settings.model_validate(config)
        assert settings.grpc.host == "0.0.0.0" and not settings.bus.create_topics
        required = [f for f, info in spec.settings.model_fields.items() if info.is_required()]
        assert all(f in config for f in required)
        assert container["command"] == ["learnerfit", "serve", service]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["grpc"] == settings.grpc.port and ports["health"] == settings.grpc.health_port
        assert ports["metrics"] == settings.log.metrics_port
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == settings.grpc.health_port


def test_each_kafka_user_may_use_exactly_its_services_topics_and_group(overlay):
    name, objects = overlay
    users = {o["metadata"]["name"]: o for o in objects if o["kind"] == "KafkaUser"}
    topics = {o["metadata"]["name"] for o in objects if o["kind"] == "KafkaTopic"}
    for service in CATALOG.names():
        acls = users[k8s_name(service)]["spec"]["authorization"]["acls"]
        granted = {(a["resource"]["type"], a["resource"]["name"], op) for a in acls for op in a["operations"]}
        access = topic_access(service)
        assert {n for t, n, op in granted if t == "topic" and op == "Read"} == access["read"]
        assert {n for t, n, op in granted if t == "topic" and op == "Write"} == access["write"]
        assert access["read"] | access["write"] <= topics, f"{service} uses a topic no KafkaTopic declares"
        groups = {n for t, n, _ in granted if t == "group"}
        assert groups == ({service} if spec_of(service).stage else set())


def test_the_dockerfiles_lint_clean_with_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    dockerfiles = sorted((ROOT / "deploy" / "docker").glob("*.Dockerfile"))
    assert len(dockerfiles) == 3
    result = subprocess.run([str(hadolint), "--no-color", *map(str, dockerfiles)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_scaled_deployments_leave_their_scale_to_keda_and_gpu_pods_roll_without_waiting_for_a_second_gpu(overlay):
    name, objects = overlay
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    scaled = {o["spec"]["scaleTargetRef"]["name"] for o in objects if o["kind"] == "ScaledObject"}
    assert scaled and all("replicas" not in deployments[d]["spec"] for d in scaled)  # an apply would reset it
    if name == "dev-cpu":
        return
    for deployment in deployments.values():
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        if "nvidia.com/gpu" not in pod["containers"][0]["resources"].get("limits", {}):
            continue
        assert spec["strategy"]["type"] == "Recreate" or spec["strategy"]["rollingUpdate"]["maxSurge"] == 0, \
            deployment["metadata"]["name"]
    for vllm in ("generator", "drift-scorer"):
        pod = deployments[vllm]["spec"]["template"]["spec"]
        shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
        assert shm["emptyDir"]["medium"] == "Memory"
        assert {"name": "dshm", "mountPath": "/dev/shm"} in pod["containers"][0]["volumeMounts"]


def test_the_site_example_has_every_certificate_made_by_cert_manager_for_the_names_services_are_called_by():
    objects = build("site-example")
    certificates = {o["spec"]["secretName"]: o for o in objects if o["kind"] == "Certificate"}
    mounted = {v["secret"]["secretName"] for o in objects if o["kind"] == "Deployment"
               for v in o["spec"]["template"]["spec"]["volumes"] if v["name"] == "grpc-tls"}
    assert len(mounted) == 9 and mounted <= set(certificates)
    for secret in mounted:
        name = secret.removesuffix("-grpc-tls")
        spec = certificates[secret]["spec"]
        assert name in spec["dnsNames"] and f"{name}.learnerfit.svc" in spec["dnsNames"]
        assert {"server auth", "client auth"} <= set(spec["usages"])  # mutual TLS: each is a client of its callees
    assert not any(":" not in c["image"] or c["image"].startswith("learnerfit") for o in objects
                   if o["kind"] == "Deployment" for c in o["spec"]["template"]["spec"]["containers"])


def test_keda_reads_lag_on_the_gpu_cluster_over_tls_as_a_user_that_may_only_describe():
    """The gpu Kafka has no plain listener; each lag trigger goes to the TLS listener with SCRAM, as the KafkaUser
    `keda`, which may describe the topics and groups it measures and nothing else."""
    objects = build("gpu")
    [kafka] = [o for o in objects if o["kind"] == "Kafka"]
    assert [(listener["port"], listener["tls"]) for listener in kafka["spec"]["kafka"]["listeners"]] == [(9093, True)]
    triggers = [t for o in objects if o["kind"] == "ScaledObject" for t in o["spec"]["triggers"] if t["type"] == "kafka"]
    assert triggers and all(t["metadata"]["bootstrapServers"].endswith(":9093") and t["metadata"]["tls"] == "enable"
                            and t["authenticationRef"]["name"] == "keda-kafka" for t in triggers)
    [keda] = [o for o in objects if o["kind"] == "KafkaUser" and o["metadata"]["name"] == "keda"]
    acls = keda["spec"]["authorization"]["acls"]
    assert {op for acl in acls for op in acl["operations"]} == {"Describe"}
    measured = {(t["metadata"]["topic"], t["metadata"]["consumerGroup"]) for t in triggers}
    assert {a["resource"]["name"] for a in acls if a["resource"]["type"] == "topic"} == {t for t, _ in measured}
    assert {a["resource"]["name"] for a in acls if a["resource"]["type"] == "group"} == {g for _, g in measured}


def test_every_metric_the_dashboard_queries_is_one_a_service_exports_with_those_labels():
    """A panel over a metric no service exports (or a label it lacks) stays empty without an error: checked here
    against the metrics the service modules register, by name and by the labels each query groups by."""
    import importlib
    import re

    from prometheus_client import REGISTRY

    for source in [*ROOT.glob("learnerfit/**/*.py"), *ROOT.glob("services/*.py"), *ROOT.glob("trainer/*.py")]:
        if "prometheus_client" in source.read_text():  # where metrics are declared
            importlib.import_module(".".join(source.relative_to(ROOT).with_suffix("").parts))
    exported: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        for name in {family.name, f"{family.name}_total", f"{family.name}_bucket"}:
            exported[name] = set()
    for collector in list(REGISTRY._collector_to_names):  # the label names each metric was declared with
        for name in REGISTRY._collector_to_names[collector]:
            exported[name] = set(getattr(collector, "_labelnames", ())) | {"le"}
    dashboard = json.loads((ROOT / "deploy/k8s/base/grafana/learnerfit.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for metric in re.findall(r"\b(learnerfit_[a-z_]+)", expr):
                assert metric in exported, f"panel {panel['title']!r} queries {metric}, which no service exports"
                for labels in re.findall(r"by \(([^)]*)\)", expr):
                    wanted = {label.strip() for label in labels.split(",")} - {"pod", "instance", "job"}
                    assert wanted <= exported[metric], \
                        f"panel {panel['title']!r}: {metric} has no {wanted - exported[metric]}"


def test_every_gpu_pod_that_loads_the_learner_runs_the_gpu_learner_on_a_gpu_of_its_own(overlay):
    """The style aligner's repairs are finished by the learner: on the gpu overlay it is the generator's learner (the
    same model on vLLM), with a GPU, /dev/shm and a rollout that does not wait for a second GPU."""
    name, objects = overlay
    if name == "dev-cpu":
        return
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}

    def learner(deployment):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        return (env.get("LEARNERFIT_LEARNER__MODEL"), env.get("LEARNERFIT_LEARNER__BACKEND"),
                container["resources"]["limits"].get("nvidia.com/gpu"),
                any(m["mountPath"] == "/dev/shm" for m in container["volumeMounts"]))

    generator = learner(deployments["generator"])
    assert generator[1:] == ("vllm", 1, True)
    assert learner(deployments["style-aligner"]) == generator
