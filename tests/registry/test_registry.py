"""The checkpoint registry: SQLite index + directory, over real gRPC; all-or-nothing registration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import grpc
import pytest

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.common.grpc_runtime import GrpcServer, channel
from services.registry.servicer import RegistryServicer
from services.registry.store import CheckpointRegistry, RegistryError


def _source(path, files=3):
    path.mkdir(parents=True)
    for i in range(files):
        (path / f"part-{i}.bin").write_bytes(os.urandom(1024))
    return path


@pytest.fixture()
def registry_stub(tmp_path):
    registry = CheckpointRegistry(tmp_path / "registry")
    server = GrpcServer("127.0.0.1", 0, workers=2, max_message_bytes=1024 * 1024)
    server.add(lambda s: services_pb2_grpc.add_RegistryServicer_to_server(RegistryServicer(registry), s),
               ["learnerfit.v1.Registry"])
    server.start()
    with channel(f"127.0.0.1:{server.port}") as ch:
        yield registry, services_pb2_grpc.RegistryStub(ch)
    server.stop(0)


def test_registered_checkpoints_are_listed_and_shown_with_their_lineage_and_eval(registry_stub, tmp_path):
    registry, stub = registry_stub
    first = registry.register(_source(tmp_path / "a"), base_model="smollm2-135m-instruct",
                              kind=records_pb2.CHECKPOINT_KIND_ADAPTER, example_ids=["e1", "e2"], policy="utility",
                              eval_results={"avg@4": 0.25})
    second = registry.register(_source(tmp_path / "b"), base_model="smollm2-135m-instruct",
                               kind=records_pb2.CHECKPOINT_KIND_FULL, eval_results={"avg@4": 0.31})
    assert (first.version, second.version) == ("v1", "v2")
    listed = stub.ListCheckpoints(services_pb2.ListCheckpointsRequest()).checkpoints
    assert [c.version for c in listed] == ["v1", "v2"]
    shown = stub.GetCheckpoint(services_pb2.GetCheckpointRequest(version="v1"))
    assert list(shown.example_ids) == ["e1", "e2"] and shown.policy == "utility"
    assert dict(shown.eval) == {"avg@4": 0.25} and shown.kind == records_pb2.CHECKPOINT_KIND_ADAPTER
    assert (registry.path_of(shown) / "part-0.bin").read_bytes() == (tmp_path / "a" / "part-0.bin").read_bytes()
    assert registry.latest().version == "v2"


@pytest.mark.parametrize("version", ["../v1", "v0", "v1/../../etc", "latest", ""])
def test_names_that_are_not_versions_are_refused(registry_stub, version):
    _, stub = registry_stub
    with pytest.raises(grpc.RpcError) as error:
        stub.GetCheckpoint(services_pb2.GetCheckpointRequest(version=version))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "version" in error.value.details()


def test_an_unknown_version_is_not_found(registry_stub):
    _, stub = registry_stub
    with pytest.raises(grpc.RpcError) as error:
        stub.GetCheckpoint(services_pb2.GetCheckpointRequest(version="v9"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_path_outside_the_root_is_refused(tmp_path):
    registry = CheckpointRegistry(tmp_path / "registry")
    with pytest.raises(RegistryError, match="leaves the registry root"):
        registry.path_of(records_pb2.Checkpoint(version="v1", path="../../etc"))


def test_a_registration_killed_midway_leaves_the_registry_unchanged(tmp_path):
    root = tmp_path / "registry"
    CheckpointRegistry(root).register(_source(tmp_path / "ok"), base_model="m", kind=records_pb2.CHECKPOINT_KIND_FULL)
    big = _source(tmp_path / "big", files=4000)
    code = ("import sys; from pathlib import Path; from services.registry.store import CheckpointRegistry;"
            f"CheckpointRegistry(Path({str(root)!r})).register(Path({str(big)!r}), base_model='m', kind=2)")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=os.getcwd())
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".staging-") for p in (root / "checkpoints").iterdir()):
        assert process.poll() is None, "the registration finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    reopened = CheckpointRegistry(root)  # a restart cleans up what the killed registration left
    assert [c.version for c in reopened.list()] == ["v1"]
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == ["v1"]
    assert reopened.register(_source(tmp_path / "next"), base_model="m", kind=2).version == "v2"


def test_learnerfit_checkpoints_lists_and_shows(tmp_path):
    root = tmp_path / "registry"
    CheckpointRegistry(root).register(_source(tmp_path / "a"), base_model="smollm2-135m-instruct",
                                      kind=records_pb2.CHECKPOINT_KIND_ADAPTER, example_ids=["e1"], policy="utility",
                                      eval_results={"avg@4": 0.25})

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "learnerfit.cli", "checkpoints", "--registry", str(root), *args],
                              capture_output=True, text=True, timeout=60)

    listed = cli("list")
    assert listed.returncode == 0 and "v1" in listed.stdout and "avg@4=0.250" in listed.stdout
    assert "adapter" in listed.stdout and "1 examples (utility)" in listed.stdout
    shown = cli("show", "v1")
    assert shown.returncode == 0 and '"absolute_path"' in shown.stdout and '"e1"' in shown.stdout
    missing = cli("show", "v7")
    assert missing.returncode == 1 and "no checkpoint v7" in missing.stderr
    bad = cli("show", "../x")
    assert bad.returncode == 1 and "not of the form v1" in bad.stderr
