"""The dev-cpu overlay's pods, run on this machine: each Deployment's container command, with its container's
environment and its ConfigMap's file, against the real broker. Only what exists in a cluster alone is swapped for a
local equivalent (the Kafka bootstrap address, the volumes' paths, the registry's DNS name); the ports each pod is
given stand in for the ones its Service and probes name, one-to-one, since nine pods cannot share port 50051 here.

Topics are created from the KafkaTopic objects first (the services create none: bus.create_topics is false), so a
service that used a topic no KafkaTopic declares would show as a topic that appeared, or fail to start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import yaml
from kafka import KafkaAdminClient

from learnerfit.local.processes import free_port, wait_until_serving
from learnerfit.paths import default_cache_dir
from learnerfit.runtime.bus import Bus
from services import SERVICES
from services.manifests import k8s_name, spec_of
from tests.deploy.test_manifests import build


def _swap(value, swaps: dict[str, str]):
    if isinstance(value, dict):
        return {k: _swap(v, swaps) for k, v in value.items()}
    if isinstance(value, str):
        for cluster, local in swaps.items():
            value = value.replace(cluster, local)
    return value


def test_every_dev_cpu_pod_starts_from_its_manifest_and_serves_on_the_ports_its_service_and_probes_name(
        broker, tmp_path, reward_model_dir):
    objects = build("dev-cpu")
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    configs = {o["metadata"]["labels"]["app.kubernetes.io/name"]: yaml.safe_load(o["data"]["config.yaml"])
               for o in objects if o["kind"] == "ConfigMap" and "config.yaml" in o["data"]}
    kafka_topics = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "KafkaTopic"}
    acl_groups = {o["metadata"]["name"]: {a["resource"]["name"] for a in o["spec"]["authorization"].get("acls", [])
                                         if a["resource"]["type"] == "group"}
                  for o in objects if o["kind"] == "KafkaUser"}

    prefix = f"k8s{uuid.uuid4().hex[:6]}-"
    bus = Bus(broker.bootstrap_servers, client_id="k8s-test", topic_prefix=prefix)
    for topic, spec in kafka_topics.items():  # what Strimzi's topic operator would create
        bus.ensure_topics([topic], spec["partitions"], 1)
    bus.close()

    local_ports = {name: {port: free_port() for port in (50051, 50052, 9090)} for name in deployments}
    swaps = {"learnerfit-kafka-bootstrap:9092": broker.bootstrap_servers, "/checkpoints": str(tmp_path / "ckpt"),
             "/opt/learnerfit/cache": str(default_cache_dir()), "/models": str(tmp_path / "models"),
             "registry:50051": f"127.0.0.1:{local_ports['registry'][50051]}"}
    processes, logs = {}, {}
    try:
        for name, deployment in deployments.items():
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            config = _swap(configs[name], swaps)
            config["bus"]["topic_prefix"] = prefix
            for key, section in (("port", "grpc"), ("health_port", "grpc"), ("metrics_port", "log")):
                config[section][key] = local_ports[name][config[section][key]]  # the manifest's port, moved
            config_file = tmp_path / f"{name}.yaml"
            config_file.write_text(yaml.safe_dump(config))
            env = {e["name"]: _swap(e["value"], swaps) for e in container["env"]}
            env |= {"LEARNERFIT_CONFIG": str(config_file), "LEARNERFIT_LOG__FORMAT": "text"}
            command = [str(Path(sys.executable).parent / container["command"][0]), *container["command"][1:]]
            logs[name] = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 (closed below)
            processes[name] = subprocess.Popen(command, env={**os.environ, **env}, stdout=logs[name],
                                               stderr=subprocess.STDOUT)
        for name, deployment in deployments.items():
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            named = {p["name"]: p["containerPort"] for p in container["ports"]}
            service_port = next(p for p in services[name]["spec"]["ports"] if p["name"] == "grpc")
            assert named[service_port["targetPort"]] == 50051
            probe_port = container["readinessProbe"]["grpc"]["port"]
            for port in (named["grpc"], probe_port):  # the API and the probes' health port both answer SERVING
                try:
                    wait_until_serving(f"127.0.0.1:{local_ports[name][port]}", timeout_s=300, service="")
                except TimeoutError:
                    raise AssertionError(f"{name} did not serve on {port}:\n"
                                         f"{(tmp_path / f'{name}.log').read_text()[-3000:]}") from None
            assert processes[name].poll() is None, f"{name} exited"

        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, client_id="k8s-test-admin")
        try:
            ours = {t[len(prefix):] for t in admin.list_topics() if t.startswith(prefix)}
            groups = {g for g, *_ in admin.list_consumer_groups()}
        finally:
            admin.close()
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs.values():
            log.close()
    assert ours == set(kafka_topics), f"topics no KafkaTopic declares appeared: {sorted(ours - set(kafka_topics))}"
    for service in SERVICES:
        if spec_of(service).stage is not None:
            # Its consumer group is the one its KafkaUser's ACL names.
            assert service in groups and acl_groups[k8s_name(service)] == {service}
