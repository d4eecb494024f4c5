"""gRPC over TLS and mutual TLS, the bearer token, reflection off, Kafka security settings and secrets kept out of
what a service prints: real servers on loopback, certificates made here by openssl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from kafka import KafkaConsumer, KafkaProducer

from learnerfit.registry.client import RegistryAccess
from learnerfit.runtime.settings import BusSettings
from learnerfit.v1 import services_pb2, services_pb2_grpc
from services.gateway import SPEC as GATEWAY
from services.registry import SPEC as REGISTRY
from tests.running import running


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _signed(name: str, ca: str, folder: Path, extensions: str = "") -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
             f"/CN={name}", cwd=folder)
    (folder / f"{name}.ext").write_text(extensions or "basicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=folder)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1, a client certificate it signed, and one from another CA."""
    folder = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "rogue-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
                 "-days", "2", "-subj", f"/CN={ca}", cwd=folder)
    _signed("server", "ca", folder, "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    _signed("generator", "ca", folder)
    _signed("intruder", "rogue-ca", folder)
    return folder


def _channel(target: str, pki: Path, client: str | None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.crt").read_bytes(),
        private_key=(pki / f"{client}.key").read_bytes() if client else None,
        certificate_chain=(pki / f"{client}.crt").read_bytes() if client else None)
    return grpc.secure_channel(target, credentials)


def _code(call) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_mutual_tls_admits_only_clients_the_ca_signed_and_the_registry_client_calls_with_its_identity(broker, pki,
                                                                                                        tmp_path):
    tls = {"tls_cert_file": str(pki / "server.crt"), "tls_key_file": str(pki / "server.key"),
           "tls_client_ca_file": str(pki / "ca.crt"), "reflection": False}
    with running(REGISTRY, broker, registry_dir=str(tmp_path / "registry"), grpc=tls) as (service, _, _bus):
        target = service.target

        def listing(ch: grpc.Channel):
            return lambda: services_pb2_grpc.RegistryStub(ch).ListCheckpoints(
                services_pb2.ListCheckpointsRequest(), timeout=5)

        with grpc.insecure_channel(target) as plaintext:
            assert _code(listing(plaintext)) == grpc.StatusCode.UNAVAILABLE
        with _channel(target, pki, None) as anonymous:
            assert _code(listing(anonymous)) == grpc.StatusCode.UNAVAILABLE  # no client certificate
        with _channel(target, pki, "intruder") as intruder:
            assert _code(listing(intruder)) == grpc.StatusCode.UNAVAILABLE  # signed by another CA
        with _channel(target, pki, "generator") as trusted:
            assert _code(listing(trusted)) == grpc.StatusCode.OK
            reflect = reflection_pb2_grpc.ServerReflectionStub(trusted).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
            assert _code(lambda: list(reflect)) == grpc.StatusCode.UNIMPLEMENTED  # reflection off
        access = RegistryAccess(target=target, ca_file=pki / "ca.crt", cert_file=pki / "generator.crt",
                                key_file=pki / "generator.key")
        assert access.newest() is None  # answered over mutual TLS: an empty registry


def test_the_gateway_with_a_token_answers_unauthenticated_without_it_and_health_stays_open(broker, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    with running(GATEWAY, broker, grpc={"auth_token_file": str(token)}) as (service, gateway, _bus):
        request = services_pb2.GetBatchRequest(batch_id="batch-none")
        with pytest.raises(grpc.RpcError) as missing:
            gateway.GetBatch(request, timeout=5)
        with pytest.raises(grpc.RpcError) as wrong:
            gateway.GetBatch(request, timeout=5, metadata=[("authorization", "Bearer guess")])
        with pytest.raises(grpc.RpcError) as admitted:
            gateway.GetBatch(request, timeout=5, metadata=[("authorization", "Bearer s3cret-token")])
        with grpc.insecure_channel(service.target) as ch:
            health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED and "bearer token is required" in \
        missing.value.details()
    assert (wrong.value.code(), wrong.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, "the bearer token is wrong")
    assert admitted.value.code() == grpc.StatusCode.NOT_FOUND  # past the token: the batch is unknown
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_kafka_security_settings_become_kafka_python_options():
    settings = BusSettings(security_protocol="SASL_SSL", sasl_username="generator", sasl_password="pw",
                           ssl_cafile="/etc/kafka-ca/ca.crt")
    options = settings.client_security()
    assert options == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "generator", "sasl_plain_password": "pw",
                       "ssl_cafile": "/etc/kafka-ca/ca.crt"}
    # Every key is an option both kafka-python clients know (a misspelt one would be ignored or refused).
    assert set(options) <= set(KafkaProducer.DEFAULT_CONFIG) & set(KafkaConsumer.DEFAULT_CONFIG)
    assert BusSettings().client_security() == {}
    with pytest.raises(ValueError, match="security_protocol"):
        BusSettings(security_protocol="SASL_TLS")


def test_secrets_stay_out_of_print_config_and_the_logs(broker, tmp_path):
    env = {**os.environ, "LEARNERFIT_BUS__SASL_PASSWORD": "hunter2-kafka",
           "LEARNERFIT_BUS__BOOTSTRAP_SERVERS": broker.bootstrap_servers}
    printed = subprocess.run([sys.executable, "-m", "services.gateway", "--print-config"], env=env,
                             capture_output=True, text=True, timeout=60, check=True)
    config = json.loads(printed.stdout)
    assert config["bus"]["sasl_password"] == "**********" and "hunter2" not in printed.stdout + printed.stderr
    # A served service's logs: started, then stopped, with the secret set.
    env |= {"LEARNERFIT_GRPC__PORT": "0", "LEARNERFIT_LOG__METRICS_PORT": "-1",
            "LEARNERFIT_BUS__TOPIC_PREFIX": "secrets-"}
    process = subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        output = ""
        for line in process.stdout:
            output += line
            if "serving" in line.lower():
                break
    finally:
        process.terminate()
        try:
            output += process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:  # graceful stops are tested elsewhere; here only what it printed matters
            process.kill()
            output += process.communicate(timeout=30)[0]
    assert "serving" in output.lower() and "hunter2" not in output
