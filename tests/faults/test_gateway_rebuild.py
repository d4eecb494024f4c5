"""A gateway killed while it folds the topics back (a rollout's new pod, killed again before it was ready): while it
rebuilds it answers UNAVAILABLE and says NOT_SERVING, never NOT_FOUND or a half-read count; restarted, it answers for
the batch in flight as before, and the batch comes out as the fault-free run's."""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from learnerfit.local.processes import channel
from learnerfit.runtime.faults import PAUSE_AT, PAUSE_DIR
from learnerfit.v1 import services_pb2, services_pb2_grpc
from tests.faults.batches import PROBLEMS, SAMPLES, submit, tally, wait_complete

POINT = "follow.rebuilding"


def test_a_gateway_killed_mid_rebuild_answers_nothing_false_and_loses_nothing(stack, reference, tmp_path,
                                                                             monkeypatch):
    batch_id = submit(stack, f"rebuild-{tmp_path.name}")
    monkeypatch.setenv(PAUSE_AT, POINT)
    monkeypatch.setenv(PAUSE_DIR, str(tmp_path))
    try:
        stack.kill("gateway")  # the batch in flight: the new gateway has it (and every earlier batch) to fold back
        stack.restart("gateway", wait=False)
    finally:
        monkeypatch.delenv(PAUSE_AT)
    deadline = time.monotonic() + 120
    while not (tmp_path / POINT).exists():
        assert time.monotonic() < deadline, f"the gateway never reached {POINT}"
        stack.check_alive()
        time.sleep(0.05)
    # Held with part of the ledger folded: its gRPC server is up, and says so honestly.
    with channel(stack.state.gateway) as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
        try:
            services_pb2_grpc.GatewayStub(ch).GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id), timeout=10)
            raise AssertionError("a gateway still folding its topics answered GetBatch")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
    stack.kill("gateway")
    stack.restart("gateway")
    with channel(stack.state.gateway) as ch:
        status = services_pb2_grpc.GatewayStub(ch).GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id),
                                                            timeout=10)
    assert (status.problems, status.samples_expected) == (PROBLEMS, PROBLEMS * SAMPLES)
    wait_complete(stack, batch_id)
    got = tally(stack, batch_id)
    print(f"gateway killed mid-rebuild: {got}")
    assert (got["lost"], got["duplicated"], got["contradicting"], got["decision_copies"]) == (0, 0, 0, 0), got
    assert got["decided"] == PROBLEMS and got["curated"] == reference["curated"]
