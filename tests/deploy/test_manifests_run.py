"""The dev-cpu overlay's pods, run on this machine: each Deployment's container command, with its container's
environment and its ConfigMap's file, against the real broker. Only what exists in a cluster alone is swapped for a
local equivalent (the Kafka bootstrap address, the volumes' paths, the registry's DNS name); the ports each pod is
given stand in for the ones its Service and probes name, one-to-one, since nine pods cannot share port 50051 here.

Topics are created from the KafkaTopic objects first (the services create none: bus.create_topics is false), so a
service that used a topic no KafkaTopic declares would show as a topic that appeared, or fail to start. Then a batch
goes through the pods, and each stage's consumer group must have committed on exactly topics its KafkaUser may read.
The broker is the test's own, so the consumer groups (named as in production) are these pods' alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml
from kafka import KafkaAdminClient

from learnerfit.local.broker import TansuBroker
from learnerfit.local.processes import channel, free_port, wait_until_serving
from learnerfit.paths import default_cache_dir
from learnerfit.runtime.bus import Bus
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from learnerfit.catalog import CATALOG
from learnerfit.generate.manifests import k8s_name, spec_of
from tests.deploy.test_manifests import build


def _swap(value, swaps: dict[str, str]):
    if isinstance(value, dict):
        return {k: _swap(v, swaps) for k, v in value.items()}
    if isinstance(value, str):
        for cluster, local in swaps.items():
            value = value.replace(cluster, local)
    return value


def test_every_dev_cpu_pod_starts_from_its_manifest_serves_on_the_ports_its_service_and_probes_name_and_runs_a_batch(
        tmp_path, reward_model_dir):
    with TansuBroker() as broker:
        _run_pods(broker, tmp_path)


def _run_pods(broker, tmp_path) -> None:
    objects = build("dev-cpu")
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    configs = {o["metadata"]["labels"]["app.kubernetes.io/name"]: yaml.safe_load(o["data"]["config.yaml"])
               for o in objects if o["kind"] == "ConfigMap" and "config.yaml" in o["data"]}
    kafka_topics = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "KafkaTopic"}
    acls = {o["metadata"]["name"]: o["spec"]["authorization"]["acls"] for o in objects if o["kind"] == "KafkaUser"}
    acl_groups = {user: {a["resource"]["name"] for a in user_acls if a["resource"]["type"] == "group"}
                  for user, user_acls in acls.items()}
    acl_reads = {user: {a["resource"]["name"] for a in user_acls if a["resource"]["type"] == "topic"
                        and "Read" in a["operations"]} for user, user_acls in acls.items()}

    prefix = f"k8s{uuid.uuid4().hex[:6]}-"
    bus = Bus(broker.bootstrap_servers, client_id="k8s-test", topic_prefix=prefix)
    for topic, spec in kafka_topics.items():  # what Strimzi's topic operator would create
        bus.ensure_topics([topic], spec["partitions"], 1)
    bus.close()

    local_ports = {name: {port: free_port() for port in (50051, 50052, 9090)} for name in deployments}
    swaps = {"learnerfit-kafka-bootstrap:9092": broker.bootstrap_servers, "/checkpoints": str(tmp_path / "ckpt"),
             "/opt/learnerfit/cache": str(default_cache_dir()), "/models": str(tmp_path / "models"),
             "/registry-index": str(tmp_path / "index"),
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

        # A batch through the pods: the gateway takes it over gRPC, every stage moves it along.
        gateway = services_pb2_grpc.GatewayStub(channel(f"127.0.0.1:{local_ports['gateway'][50051]}"))
        problem = records_pb2.Problem(question="Calculate 3 + 4.", reference_answer="7", source="k8s-test")
        batch_id = gateway.SubmitBatch(services_pb2.SubmitBatchRequest(
            problems=[problem], oracle_modes=[records_pb2.ORACLE_MODE_SYNTHESIZE],
            sampling=records_pb2.SamplingSpec(samples_per_problem=2, max_new_tokens=24, seed=3)), timeout=30).batch_id
        deadline = time.monotonic() + 240
        status = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id), timeout=10)
        while status.state != records_pb2.BATCH_STATE_COMPLETE and time.monotonic() < deadline:
            time.sleep(0.5)
            status = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id), timeout=10)
        assert status.state == records_pb2.BATCH_STATE_COMPLETE and status.oracle_scored == 1, status
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, client_id="k8s-test-admin")
        try:
            ours = {t[len(prefix):] for t in admin.list_topics() if t.startswith(prefix)}
            committed = {s: {tp.topic[len(prefix):] for tp, at in admin.list_group_offsets(s).get(s, {}).items()
                             if at.offset > 0} for s in CATALOG.names() if spec_of(s).stage is not None}
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
    for service, topics in committed.items():
        # Its consumer group is the one its KafkaUser's ACL names, and it read only topics the ACL lets it read.
        assert acl_groups[k8s_name(service)] == {service}
        assert topics <= acl_reads[k8s_name(service)], f"{service} read {sorted(topics)}"
    # Every stage the batch passed committed there (the trainer holds what it is given until it trains, so it
    # commits nothing yet).
    assert all(committed[s] for s in ("generator", "reward_scorer", "drift_scorer", "curator", "refiner",
                                      "style_aligner")), committed
