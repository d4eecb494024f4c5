"""The checkpoint registry: SQLite index + directory, served over real gRPC (paged); all-or-nothing registration."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import grpc
import pytest

from learnerfit.errors import FailedPrecondition, InvalidInput, NotFound
from learnerfit.registry.client import RegistryClient
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.v1 import records_pb2, services_pb2
from services.registry import SPEC
from tests.running import running


def _source(path, files=3):
    path.mkdir(parents=True)
    for i in range(files):
        (path / f"part-{i}.safetensors").write_bytes(os.urandom(1024))
    return path


@pytest.fixture()
def registry_stub(tmp_path, broker):
    with running(SPEC, broker, loops=False, registry_dir=str(tmp_path / "registry")) as (service, stub, _bus):
        yield CheckpointRegistry(tmp_path / "registry"), stub


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
    written = (tmp_path / "a" / "part-0.safetensors").read_bytes()
    assert (registry.path_of(shown) / "part-0.safetensors").read_bytes() == written
    assert shown.uri == str(registry.path_of(shown))  # where a follower loads it from
    assert registry.latest().version == "v2"


def test_listing_pages_through_every_checkpoint_in_order(registry_stub, tmp_path):
    registry, stub = registry_stub
    for i in range(5):
        registry.register(_source(tmp_path / f"s{i}", files=1), base_model="m", kind=records_pb2.CHECKPOINT_KIND_FULL)
    pages, token = [], ""
    while True:
        page = stub.ListCheckpoints(services_pb2.ListCheckpointsRequest(page_size=2, page_token=token))
        pages.append([c.version for c in page.checkpoints])
        token = page.next_page_token
        if not token:
            break
    assert pages == [["v1", "v2"], ["v3", "v4"], ["v5"]]


def test_the_registry_client_reads_every_page_and_maps_errors(tmp_path, broker):
    registry = CheckpointRegistry(tmp_path / "registry")
    for i in range(3):
        registry.register(_source(tmp_path / f"s{i}", files=1), base_model="m", kind=records_pb2.CHECKPOINT_KIND_FULL)
    with running(SPEC, broker, loops=False, registry_dir=str(tmp_path / "registry")) as (service, _stub, _bus):
        client = RegistryClient(service.target)
        try:
            assert [c.version for c in client.list(page_size=1)] == ["v1", "v2", "v3"]
            assert client.get("v2").uri.endswith("checkpoints/v2")
            with pytest.raises(NotFound, match="no checkpoint v9"):
                client.get("v9")
            with pytest.raises(InvalidInput) as error:
                client.get("latest")
            assert error.value.field == "version"
        finally:
            client.close()


@pytest.mark.parametrize(("token", "size", "field"), [("garbage", 2, "page_token"), ("", -1, "page_size")])
def test_a_bad_page_request_names_its_field(registry_stub, token, size, field):
    _, stub = registry_stub
    with pytest.raises(grpc.RpcError) as error:
        stub.ListCheckpoints(services_pb2.ListCheckpointsRequest(page_size=size, page_token=token))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error.value.details().startswith(f"{field}:")


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
    with pytest.raises(InvalidInput, match="leaves the registry root"):
        registry.path_of(records_pb2.Checkpoint(version="v1", path="../../etc"))


# The registering process copies one file, says so, then waits: it is killed while it holds a half-copied
# checkpoint, whatever the machine's speed.
_HELD_MIDWAY = """
import shutil, sys, time
from pathlib import Path
from learnerfit.registry.store import CheckpointRegistry
root, source, flag = map(Path, sys.argv[1:])
copytree = shutil.copytree
def copy_then_hold(src, dst, **kwargs):
    def copy(a, b, **kw):
        shutil.copy2(a, b, **kw)
        flag.touch()
        time.sleep(600)
    return copytree(src, dst, copy_function=copy)
shutil.copytree = copy_then_hold
CheckpointRegistry(root).register(source, base_model="m", kind=2)
"""


def test_a_registration_killed_midway_leaves_the_registry_unchanged(tmp_path):
    root = tmp_path / "registry"
    CheckpointRegistry(root).register(_source(tmp_path / "ok"), base_model="m", kind=records_pb2.CHECKPOINT_KIND_FULL)
    flag = tmp_path / "copying"
    process = subprocess.Popen([sys.executable, "-c", _HELD_MIDWAY, str(root), str(_source(tmp_path / "big")),
                                str(flag)], cwd=os.getcwd())
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the registering process never copied"
        time.sleep(0.01)
    assert [p for p in (root / "checkpoints").iterdir() if p.name.startswith(".staging-")]  # half a checkpoint
    process.send_signal(signal.SIGKILL)
    process.wait()
    read_only = CheckpointRegistry.reader(root)  # a reader (the registry service) leaves what it finds alone
    assert [c.version for c in read_only.list()] == ["v1"]
    assert [p for p in (root / "checkpoints").iterdir() if p.name.startswith(".staging-")]
    with pytest.raises(FailedPrecondition, match="open for reading only"):
        read_only.register(_source(tmp_path / "refused"), base_model="m", kind=2)
    reopened = CheckpointRegistry(root)  # the writer's restart cleans up what the killed registration left
    assert [c.version for c in reopened.list()] == ["v1"]
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == ["v1"]
    assert reopened.register(_source(tmp_path / "next"), base_model="m", kind=2).version == "v2"


def test_learnerfit_checkpoints_asks_a_registry_service_given_only_its_address(tmp_path, broker):
    root = tmp_path / "registry"
    for i in range(3):
        CheckpointRegistry(root).register(_source(tmp_path / f"s{i}", files=1), base_model="m",
                                          kind=records_pb2.CHECKPOINT_KIND_FULL, example_ids=[f"e{i}"])
    with running(SPEC, broker, loops=False, registry_dir=str(root)) as (service, _stub, _bus):
        def cli(*args):
            return subprocess.run([sys.executable, "-m", "learnerfit.cli", "checkpoints", *args],
                                  capture_output=True, text=True, timeout=60, cwd=tmp_path)

        listed = cli("list", "--registry-target", service.target)
        shown = cli("show", "v2", "--registry-target", service.target)
        both = cli("--registry", str(root), "--registry-target", service.target)
    assert listed.returncode == 0, listed.stderr
    assert re.findall(r"^\s*(v\d)(?: \*)?\s+full", listed.stdout, re.MULTILINE) == ["v1", "v2", "v3"], listed.stdout
    assert "v3 *" in listed.stdout  # followed: the newest of those registered before the gate
    assert f"3 checkpoints in the registry at {service.target}" in listed.stdout + listed.stderr
    assert shown.returncode == 0 and json.loads(shown.stdout)["example_ids"] == ["e1"]
    assert both.returncode != 0 and "not both" in both.stderr


def test_learnerfit_checkpoints_lists_and_shows(tmp_path):
    root = tmp_path / "registry"
    CheckpointRegistry(root).register(_source(tmp_path / "a"), base_model="smollm2-135m-instruct",
                                      kind=records_pb2.CHECKPOINT_KIND_ADAPTER, example_ids=["e1"], policy="utility",
                                      eval_results={"avg@4": 0.25})

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "learnerfit.cli", "checkpoints", "--registry", str(root), *args],
                              capture_output=True, text=True, timeout=60)

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"v1 \*\s+adapter\s+\S+ \S+\s+1\s+utility\s+avg@4=0.250", listed.stdout), listed.stdout
    shown = cli("show", "v1")
    assert shown.returncode == 0 and json.loads(shown.stdout)["uri"] == str((root / "checkpoints" / "v1").resolve())
    assert json.loads(shown.stdout)["example_ids"] == ["e1"]
    missing = cli("show", "v7")
    assert missing.returncode == 1 and "no checkpoint v7" in missing.stderr
    bad = cli("show", "../x")
    assert bad.returncode == 1 and "version: '../x' is not a registered version (v1, v2, ...)" in bad.stderr


def test_the_client_waits_for_a_registry_that_is_still_starting(tmp_path, broker):
    import threading

    from learnerfit.local.processes import free_port

    port = free_port()
    client = RegistryClient(f"127.0.0.1:{port}", timeout_s=30)
    started = threading.Event()

    def start_later():
        time.sleep(1.0)  # the client is already asking
        with running(SPEC, broker, loops=False, registry_dir=str(tmp_path / "registry"), grpc={"port": port}):
            started.set()
            time.sleep(5)

    threading.Thread(target=start_later, daemon=True).start()
    try:
        assert list(client.list()) == []  # answered once the registry served, not UNAVAILABLE
        assert started.is_set()
    finally:
        client.close()


def test_a_writer_registry_registers_what_a_remote_trainer_sends_and_keeps_its_index_off_the_shared_volume(
        broker, tmp_path, tiny_model):
    """The cluster layout: checkpoint files on a shared volume, the index on the registry's own; the trainer copies a
    trained checkpoint into incoming/ and calls Register, so only the registry ever opens the index."""
    from learnerfit.registry.client import RegistryAccess, RemoteRegistry
    from services.trainer import SPEC as TRAINER
    from tests.services.test_trainer import _example

    shared, index = tmp_path / "shared", tmp_path / "index"
    with running(SPEC, broker, registry_dir=str(shared), index_dir=str(index), writer=True) as (service, stub, _):
        remote = RemoteRegistry(RegistryAccess(target=service.target).client(), shared)
        first = remote.register(_source(tmp_path / "one"), base_model="m", kind=records_pb2.CHECKPOINT_KIND_ADAPTER,
                                example_ids=["e1"], policy="p", eval_results={"avg@4": 0.5})
        refused = {}
        for source in ("incoming/../../one", "checkpoints/v1", "../shared/incoming/x", "incoming"):
            with pytest.raises(grpc.RpcError) as error:
                stub.Register(services_pb2.RegisterRequest(source=source, base_model="m"), timeout=10)
            refused[source] = error.value.code()
        # A consumer group of its own: the trainer tests' group "trainer" on the shared broker stays theirs.
        with running(TRAINER, broker, registry_dir=str(shared), registry={"target": service.target}, train_every=0,
                     train={"base_model": str(tiny_model), "eval_problems": 0},
                     stage={"group": f"trainer-{uuid.uuid4().hex[:8]}"}) as (_, trainer, _bus):
            # A study's training: its own seed and an epoch budget, recorded with the checkpoint through Register.
            given = services_pb2.ExampleSet(examples=[_example(i) for i in range(2)], seed=3, epochs=2)
            trained = trainer.Train(services_pb2.TrainRequest(given=given, start_from="base"), timeout=300).checkpoint
        listed = stub.ListCheckpoints(services_pb2.ListCheckpointsRequest(), timeout=10).checkpoints
    assert first.version == "v1" and first.eval["avg@4"] == 0.5 and first.policy == "p"
    assert (shared / "checkpoints" / "v1" / "part-0.safetensors").is_file()
    assert set(refused.values()) == {grpc.StatusCode.INVALID_ARGUMENT}
    assert trained.version == "v2" and [c.version for c in listed] == ["v1", "v2"]
    # Two examples, batch 8, two passes: 2 optimizer steps; the trainer's own max_steps (0) and seed (0) set aside.
    assert listed[1].training == records_pb2.TrainingRecipe(start_from="base", seed=3, epochs=2, steps=2,
                                                            learning_rate=trained.training.learning_rate)
    assert trained.training.learning_rate > 0 and listed[0].training == records_pb2.TrainingRecipe()
    assert (shared / "checkpoints" / "v2" / "probe.json").is_file() and not list((shared / "incoming").iterdir())
    assert (index / "registry.sqlite").is_file() and not (shared / "registry.sqlite").exists()


def test_an_index_from_before_training_recipes_gains_the_column_and_keeps_its_checkpoints(tmp_path):
    import sqlite3

    root = tmp_path / "registry"
    (root / "checkpoints" / "v1").mkdir(parents=True)
    old = sqlite3.connect(root / "registry.sqlite")
    old.execute("CREATE TABLE checkpoints (number INTEGER PRIMARY KEY, base_model TEXT NOT NULL, kind INTEGER NOT "
                "NULL, example_ids TEXT NOT NULL, policy TEXT NOT NULL, eval TEXT NOT NULL, created_at REAL NOT NULL)")
    old.execute("INSERT INTO checkpoints VALUES (1, 'm', 1, '[\"e1\"]', 'utility', '{}', 0)")
    old.commit()
    old.close()
    registry = CheckpointRegistry(root)
    recipe = records_pb2.TrainingRecipe(start_from="base", seed=2, max_steps=8, learning_rate=1e-3, steps=8)
    registry.register(_source(tmp_path / "b"), base_model="m", kind=1, example_ids=["e1"], training=recipe)
    first, second = registry.list()
    assert (first.version, list(first.example_ids), first.training) == ("v1", ["e1"], records_pb2.TrainingRecipe())
    assert second.training == recipe
    assert CheckpointRegistry.reader(root).get("v2").training == recipe  # opened again: nothing added twice


def test_a_read_only_registry_refuses_register(registry_stub):
    _, stub = registry_stub
    with pytest.raises(grpc.RpcError) as error:
        stub.Register(services_pb2.RegisterRequest(source="incoming/x", base_model="m"), timeout=10)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "read-only" in error.value.details()


def test_register_asked_again_after_a_lost_reply_returns_the_checkpoint_it_made(broker, tmp_path):
    """The registry committed, the reply never reached the trainer, which asks again (its incoming copy made anew,
    or already removed): one checkpoint, the same version both times. Another recipe is another checkpoint."""
    import shutil

    shared = tmp_path / "shared"
    with running(SPEC, broker, registry_dir=str(shared), writer=True) as (_service, stub, _):
        recipe = records_pb2.TrainingRecipe(start_from="base", seed=1, epochs=2, steps=4, learning_rate=3e-4)

        def register(name: str, training=recipe, copy: bool = True):
            if copy:
                shutil.copytree(_source(tmp_path / f"src-{name}"), shared / "incoming" / name)
            return stub.Register(services_pb2.RegisterRequest(
                source=f"incoming/{name}", base_model="m", kind=records_pb2.CHECKPOINT_KIND_ADAPTER,
                example_ids=["e2", "e1"], policy="utility", training=training), timeout=30)

        made = register("first")  # its reply is the one lost
        again = register("first", copy=False)  # the same call again: the folder is gone, registered
        anew = register("retry")  # the client's retry with a fresh copy
        other = register("other", training=records_pb2.TrainingRecipe(start_from="v1", seed=1, epochs=2, steps=4,
                                                                       learning_rate=3e-4))
        listed = stub.ListCheckpoints(services_pb2.ListCheckpointsRequest(), timeout=10).checkpoints
    assert (made.version, again.version, anew.version, other.version) == ("v1", "v1", "v1", "v2")
    assert [c.version for c in listed] == ["v1", "v2"]
    assert not list((shared / "incoming").iterdir())  # the retry's copy is removed, not left behind
