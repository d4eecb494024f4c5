"""A bounded loopback load test of the gateway: many concurrent clients submitting, polling and streaming, past
its limits. Only RESOURCE_EXHAUSTED at the configured limits; streams whose clients leave free their workers; the
ledger stays within its bound; the gateway still serves afterwards; the test stops by itself."""

from __future__ import annotations

import threading
import time
from collections import Counter

import grpc
import psutil
from prometheus_client import REGISTRY

from learnerfit.local.processes import channel
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.gateway import SPEC
from tests.running import running

CLIENTS, SECONDS = 16, 12
LIVE_BATCHES, STREAMS = 40, 3


def test_many_clients_get_answers_or_resource_exhausted_and_the_gateway_stays_bounded(broker):
    sections = {"max_live_batches": LIVE_BATCHES, "max_streams": STREAMS, "grpc": {"port": 0, "workers": 6}}
    with running(SPEC, broker, **sections) as (service, _stub, _bus):
        rss_before = psutil.Process().memory_info().rss
        codes: dict[str, Counter] = {"SubmitBatch": Counter(), "GetBatch": Counter(), "StreamResults": Counter()}
        lock = threading.Lock()
        accepted: list[str] = []
        deadline = time.monotonic() + SECONDS

        def client(number: int) -> None:
            stub = services_pb2_grpc.GatewayStub(channel(service.target))
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
        grown_mb = (psutil.Process().memory_info().rss - rss_before) / 2**20
        live = REGISTRY.get_sample_value("learnerfit_state_entries", {"service": "gateway", "what": "live_batches"})
        print({m: dict(c) for m, c in codes.items()}, f"live batches {live}, rss +{grown_mb:.0f} MiB")

        # Submissions: accepted until the live-batch bound, then refused with RESOURCE_EXHAUSTED, never anything else.
        assert set(codes["SubmitBatch"]) == {"OK", "RESOURCE_EXHAUSTED"}
        assert set(codes["GetBatch"]) <= {"OK"}
        # Streams: over the limit refused; the others end when their client's deadline passes.
        assert set(codes["StreamResults"]) == {"RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}
        stub = services_pb2_grpc.GatewayStub(channel(service.target))
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
