"""A bounded loopback load test of the gateway, as a process of its own: many concurrent clients submitting, polling
and streaming, past its limits. Only RESOURCE_EXHAUSTED at the configured limits; streams whose clients leave free
their workers; the ledger stays within its bound, and the gateway process's own memory with it; the gateway still
serves afterwards, and restarted it answers for every batch it admitted; the test stops by itself. (No pipeline
runs behind it, so no batch completes: completion is the end-to-end tests'.)"""

from __future__ import annotations

import threading
import time
from collections import Counter

import urllib.request

import grpc
import psutil
import pytest

from learnerfit.local.processes import channel
from learnerfit.local.stack import LocalStack
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc

CLIENTS, SECONDS = 16, 12
LIVE_BATCHES, STREAMS = 40, 3


def _live_batches(stack: LocalStack) -> float:
    """The gateway's own count, scraped from its metrics endpoint."""
    port = stack.state.services["gateway"].metrics_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith('learnerfit_state_entries{service="gateway",what="live_batches"}'):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError("the gateway exports no live_batches")


@pytest.fixture()
def stack(tmp_path):
    local = LocalStack(tmp_path / "stack", services=("gateway",), start_timeout_s=60, config={"gateway": {
        "max_live_batches": LIVE_BATCHES, "max_streams": STREAMS, "grpc": {"workers": 6}}})
    local.start()
    yield local
    local.stop()


def test_many_clients_get_answers_or_resource_exhausted_and_the_gateway_stays_bounded(stack):
    target = stack.state.gateway
    gateway = psutil.Process(stack.state.services["gateway"].pid)
    rss_before = gateway.memory_info().rss
    codes: dict[str, Counter] = {"SubmitBatch": Counter(), "GetBatch": Counter(), "StreamResults": Counter()}
    lock = threading.Lock()
    accepted: list[str] = []
    deadline = time.monotonic() + SECONDS

    def client(number: int) -> None:
        stub = services_pb2_grpc.GatewayStub(channel(target))
        batch_id, sent = "", 0
        while time.monotonic() < deadline:
            sent += 1
            for method in ("SubmitBatch", "GetBatch", "StreamResults"):
                try:
                    if method == "SubmitBatch":
                        problems = [records_pb2.Problem(question=f"Calculate {number} + {sent}.",
                                                        reference_answer=str(number + sent))]
                        batch_id = stub.SubmitBatch(services_pb2.SubmitBatchRequest(problems=problems),
                                                    timeout=10).batch_id
                        accepted.append(batch_id)
                    elif method == "GetBatch" and batch_id:
                        stub.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id), timeout=10)
                    elif method == "StreamResults" and batch_id:
                        # The batch never completes (no pipeline runs): the client gives up after 0.5 s.
                        for _ in stub.StreamResults(services_pb2.StreamResultsRequest(batch_id=batch_id),
                                                    timeout=0.5):
                            pass
                    outcome = "OK"
                except grpc.RpcError as error:
                    outcome = error.code().name
                with lock:
                    codes[method][outcome] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 60)
    assert not any(t.is_alive() for t in threads), "a client hung"
    grown_mb = (gateway.memory_info().rss - rss_before) / 2**20
    live = _live_batches(stack)
    print({m: dict(c) for m, c in codes.items()}, f"live batches {live}, rss +{grown_mb:.0f} MiB")

    # Submissions: accepted until the live-batch bound, then refused with RESOURCE_EXHAUSTED, never anything else.
    assert set(codes["SubmitBatch"]) == {"OK", "RESOURCE_EXHAUSTED"}
    assert set(codes["GetBatch"]) <= {"OK"}
    # Streams: over the limit refused; the others end when their client's deadline passes.
    assert set(codes["StreamResults"]) == {"RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}
    stub = services_pb2_grpc.GatewayStub(channel(target))
    status = stub.GetBatch(services_pb2.GetBatchRequest(batch_id=accepted[-1]), timeout=10)
    assert status.state == records_pb2.BATCH_STATE_RUNNING
    # The clients that left freed their stream slots: a new stream is taken, not refused.
    time.sleep(2)
    try:
        for _ in stub.StreamResults(services_pb2.StreamResultsRequest(batch_id=status.batch_id), timeout=1):
            pass
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error.details()
    assert live == LIVE_BATCHES == len(set(accepted))  # filled to the bound, not past it
    assert grown_mb < 200
    # Restarted, it folds its topics back and answers for every batch it admitted, still at the bound.
    stack.kill("gateway")
    stack.restart("gateway")
    with channel(stack.state.gateway) as ch:
        stub = services_pb2_grpc.GatewayStub(ch)
        states = {stub.GetBatch(services_pb2.GetBatchRequest(batch_id=b), timeout=10).state for b in set(accepted)}
    assert states == {records_pb2.BATCH_STATE_RUNNING} and _live_batches(stack) == LIVE_BATCHES
