"""Bad submissions get INVALID_ARGUMENT naming the field, over real gRPC, and nothing reaches the topic."""

from __future__ import annotations

import grpc
import pytest

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from learnerfit.local.processes import channel
from learnerfit.domain.batches import BatchLedger
from services.gateway.servicer import GatewayServicer
from services.gateway.settings import GatewaySettings
from tests.kafka_helpers import read_topic


@pytest.fixture()
def gateway(bus, fresh):
    settings = GatewaySettings(bootstrap_servers=bus.bootstrap_servers, problems_topic=fresh("problems"),
                               max_question_chars=200, max_answer_chars=20, max_samples_per_problem=16)
    bus.ensure_topics([settings.problems_topic], partitions=1)
    servicer = GatewayServicer(settings, bus, BatchLedger())
    server = GrpcServer("127.0.0.1", 0, workers=4, max_message_bytes=1024 * 1024)
    server.add(lambda s: services_pb2_grpc.add_GatewayServicer_to_server(servicer, s), ["learnerfit.v1.Gateway"])
    server.start()
    with channel(f"127.0.0.1:{server.port}") as ch:
        yield services_pb2_grpc.GatewayStub(ch), settings
    server.stop(0)


def _request(*problems, **sampling) -> services_pb2.SubmitBatchRequest:
    request = services_pb2.SubmitBatchRequest(problems=problems)
    if sampling:
        request.sampling.CopyFrom(records_pb2.SamplingSpec(**sampling))
    return request


def _problem(question="Calculate 1 + 2.", answer="3") -> records_pb2.Problem:
    return records_pb2.Problem(question=question, reference_answer=answer)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (_request(), "problems"),
        (_request(_problem(), _problem(question="   ")), "problems[1].question"),
        (_request(_problem(answer="")), "problems[0].reference_answer"),
        (_request(_problem(), samples_per_problem=17), "sampling.samples_per_problem"),
        (_request(_problem(), samples_per_problem=4, temperature=3.0), "sampling.temperature"),
        (_request(_problem(question="x" * 201)), "problems[0].question"),
        (_request(_problem(answer="9" * 21)), "problems[0].reference_answer"),
        (_request(_problem(), _problem()), "problems[1]"),
        (services_pb2.SubmitBatchRequest(problems=[_problem()], curation_policy="best_vibes"), "curation_policy"),
    ],
    ids=["empty-batch", "empty-question", "empty-answer", "n-too-large", "temperature", "oversized-question",
         "oversized-answer", "duplicate-problem", "unknown-policy"],
)
def test_bad_input_is_invalid_argument_naming_the_field_and_nothing_is_published(gateway, bus, request_, field):
    stub, settings = gateway
    with pytest.raises(grpc.RpcError) as error:
        stub.SubmitBatch(request_)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"{field}:")
    assert read_topic(bus, settings.problems_topic, settle_s=0.3, timeout_s=1) == []


def test_a_message_over_the_size_limit_is_refused_by_grpc(gateway, bus):
    stub, settings = gateway
    with pytest.raises(grpc.RpcError) as error:
        stub.SubmitBatch(_request(_problem(question="x" * 2 * 1024 * 1024)))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert read_topic(bus, settings.problems_topic, settle_s=0.3, timeout_s=1) == []


def test_a_good_batch_is_published_once_even_when_resubmitted(gateway, bus):
    stub, settings = gateway
    request = _request(_problem(), _problem("Calculate 2 + 2.", "4"), samples_per_problem=2)
    first = stub.SubmitBatch(request)
    second = stub.SubmitBatch(request)
    assert first.batch_id == second.batch_id
    assert not first.already_submitted and second.already_submitted
    assert first.status.problems == 2 and first.status.samples_expected == 4
    published = read_topic(bus, settings.problems_topic, at_least=2)
    assert len(published) == 2
    problem = records_pb2.Problem.FromString(published[0].value)
    assert problem.batch_id == first.batch_id and problem.sampling.samples_per_problem == 2
    assert problem.curation_policy == "rejection_sampling"


def test_unknown_and_missing_batches_get_not_found_and_invalid_argument(gateway):
    stub, _ = gateway
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetBatch(services_pb2.GetBatchRequest(batch_id="batch-nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as empty:
        stub.GetBatch(services_pb2.GetBatchRequest())
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert empty.value.details().startswith("batch_id:")


def test_oracle_modes_are_checked_and_carried_to_every_problem(gateway, bus):
    stub, settings = gateway
    for modes, field in (([records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_REFINE], "oracle_modes[1]"),
                         ([99], "oracle_modes[0]")):
        request = _request(_problem())
        request.oracle_modes.extend(modes)
        with pytest.raises(grpc.RpcError) as error:
            stub.SubmitBatch(request)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in error.value.details()
    plain = stub.SubmitBatch(_request(_problem())).batch_id
    request = _request(_problem())
    request.oracle_modes.extend([records_pb2.ORACLE_MODE_REPAIR, records_pb2.ORACLE_MODE_REFINE])
    asked = stub.SubmitBatch(request).batch_id
    assert asked != plain  # asking for Oracle work makes it another batch
    [problem] = [records_pb2.Problem.FromString(r.value) for r in read_topic(bus, settings.problems_topic, at_least=2)
                 if records_pb2.Problem.FromString(r.value).batch_id == asked]
    assert list(problem.oracle_modes) == [records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_REPAIR]
