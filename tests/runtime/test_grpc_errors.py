"""Errors become status codes by one table, both ways: each error a client can act on maps to its code with its
message, and the client turns the code back into the same error (the registry client's retries depend on it);
anything else is INTERNAL with an error id, its text never reaching the client, and a client does not retry it."""

from __future__ import annotations

import logging

import grpc
import pytest

from learnerfit.errors import (FailedPrecondition, InvalidInput, LimitExceeded, NotFound, RemoteError, TooLarge,
                               Unavailable, from_status)
from learnerfit.registry.client import RegistryClient
from learnerfit.runtime.runner import is_transient
from learnerfit.local.processes import channel
from learnerfit.runtime.grpc import GrpcServer, service_handler
from learnerfit.v1 import services_pb2, services_pb2_grpc

REGISTRY = services_pb2.DESCRIPTOR.services_by_name["Registry"]


@pytest.fixture()
def raising():
    """A Registry API whose GetCheckpoint raises whatever the test puts in `error`."""
    error: list[Exception] = []

    def get_checkpoint(request):
        raise error[0]

    server = GrpcServer("127.0.0.1", 0, workers=2, max_message_bytes=1024 * 1024)
    server.add(service_handler(REGISTRY, {"GetCheckpoint": get_checkpoint, "ListCheckpoints": lambda r: None,
                                              "Register": lambda r: None, "SetPromotion": lambda r: None}),
               [REGISTRY.full_name])
    server.start()
    with channel(f"127.0.0.1:{server.port}") as ch:
        stub = services_pb2_grpc.RegistryStub(ch)
        stub.target = f"127.0.0.1:{server.port}"  # for a client of its own
        yield error, stub
    server.stop(0)


@pytest.mark.parametrize(("error", "code", "details"), [
    (InvalidInput("version", "must look like v1"), grpc.StatusCode.INVALID_ARGUMENT, "version: must look like v1"),
    (NotFound("no checkpoint v9"), grpc.StatusCode.NOT_FOUND, "no checkpoint v9"),
    (TooLarge("problems", "1001 problems, at most 1000 allowed (setting intake.max_problems_per_request)"),
     grpc.StatusCode.INVALID_ARGUMENT,
     "problems: 1001 problems, at most 1000 allowed (setting intake.max_problems_per_request)"),
    (LimitExceeded("40 batches are running"), grpc.StatusCode.RESOURCE_EXHAUSTED, "40 batches are running"),
    (Unavailable("broker down, retry"), grpc.StatusCode.UNAVAILABLE, "broker down, retry"),
    (FailedPrecondition("train first"), grpc.StatusCode.FAILED_PRECONDITION, "train first"),
])
def test_each_error_a_client_can_act_on_has_its_code(raising, error, code, details):
    errors, stub = raising
    errors.append(error)
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetCheckpoint(services_pb2.GetCheckpointRequest(version="v1"))
    assert (raised.value.code(), raised.value.details()) == (code, details)


def test_a_bug_is_internal_with_an_error_id_in_the_log_and_no_text_for_the_client(raising, caplog):
    errors, stub = raising
    errors.append(KeyError("secret internal state"))
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.RpcError) as raised:
        stub.GetCheckpoint(services_pb2.GetCheckpointRequest(version="v1"))
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in raised.value.details() and "KeyError" not in raised.value.details()
    error_id = raised.value.details().split()[2].rstrip(";")
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_service_must_give_a_function_for_every_method():
    with pytest.raises(TypeError, match="learnerfit.v1.Registry: no function for ListCheckpoints"):
        service_handler(REGISTRY, {"GetCheckpoint": lambda r: None})


@pytest.mark.parametrize(("error", "kind", "retried"), [
    (InvalidInput("version", "must look like v1"), InvalidInput, False),
    (TooLarge("problems", "1001 problems, at most 1000"), InvalidInput, False),
    (NotFound("no checkpoint v9"), NotFound, False),
    (LimitExceeded("40 batches are running"), LimitExceeded, True),
    (Unavailable("index busy"), Unavailable, True),
    (FailedPrecondition("this registry is read-only"), FailedPrecondition, False),
    (KeyError("a bug"), RemoteError, False),
])
def test_a_client_gets_back_the_error_the_server_raised_and_retries_only_what_can_pass(raising, error, kind, retried):
    errors, stub = raising
    errors.append(error)
    target = stub.target
    client = RegistryClient(target, timeout_s=5)
    try:
        with pytest.raises(kind) as raised:
            client.get("v1")
    finally:
        client.close()
    assert type(raised.value) is kind
    if kind is InvalidInput:
        assert (raised.value.field, raised.value.why) == (error.field, error.why)
    elif kind is Unavailable:  # which service is down is worth saying
        assert str(raised.value) == f"registry at {target}: {error}"
    elif kind is not RemoteError:  # the server's own message, passed on as it came
        assert str(raised.value) == str(error)
    assert is_transient(raised.value) is retried


def test_a_deadline_is_worth_retrying_and_an_unknown_code_is_not():
    assert type(from_status("DEADLINE_EXCEEDED", "Deadline Exceeded")) is Unavailable
    assert type(from_status("DATA_LOSS", "gone", "registry at x")) is RemoteError
