"""The gateway over real gRPC: bad submissions get INVALID_ARGUMENT naming the field (and, over a size limit, the
limit and its setting), and nothing of them reaches the topic; good ones are published once."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest

from learnerfit.domain import topics
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.gateway import SPEC
from tests.kafka_helpers import read_topic
from tests.running import running


@pytest.fixture()
def gateway(broker):
    limits = {"max_question_chars": 200, "max_answer_chars": 20, "max_samples_per_problem": 16}
    with running(SPEC, broker, loops=False, intake=limits, grpc={"max_message_bytes": 1024 * 1024}) as (_, stub, bus):
        yield stub, bus


def _published_only(bus, stub, batch_id: str | None = None) -> list[records_pb2.Problem]:
    """The problems on the topic once a good marker batch got through: anything published before it is there too."""
    marker = stub.SubmitBatch(_request(_problem("Calculate 5 + 5.", "10"), samples_per_problem=1)).batch_id
    records = read_topic(bus, topics.PROBLEMS, at_least=1, timeout_s=15)
    problems = [records_pb2.Problem.FromString(r.value) for r in records]
    assert marker in {p.batch_id for p in problems}
    return [p for p in problems if p.batch_id != marker]


def _request(*problems, **sampling) -> services_pb2.SubmitBatchRequest:
    request = services_pb2.SubmitBatchRequest(problems=problems)
    if sampling:
        request.sampling.CopyFrom(records_pb2.SamplingSpec(**sampling))
    return request


def _problem(question="Calculate 1 + 2.", answer="3") -> records_pb2.Problem:
    return records_pb2.Problem(question=question, reference_answer=answer)


INVALID = grpc.StatusCode.INVALID_ARGUMENT
TOO_LARGE = INVALID  # AIP-193: a request over a size limit is bad input, not a lack of capacity


@pytest.mark.parametrize(
    ("request_", "code", "details"),
    [
        (_request(), INVALID, "problems: must contain at least one problem"),
        (_request(_problem(), _problem(question="   ")), INVALID, "problems[1].question: must not be empty"),
        (_request(_problem(answer="")), INVALID,
         "problems[0].reference_answer: must not be empty (the answer check needs it)"),
        (_request(_problem(), samples_per_problem=17), TOO_LARGE,
         "sampling.samples_per_problem: 17 samples, at most 16 allowed (setting intake.max_samples_per_problem)"),
        (_request(_problem(), samples_per_problem=4, temperature=3.0), INVALID,
         "sampling.temperature: 3.0 is out of range 0..2"),
        (_request(_problem(question="x" * 201)), TOO_LARGE,
         "problems[0].question: 201 characters, at most 200 allowed (setting intake.max_question_chars)"),
        (_request(_problem(answer="9" * 21)), TOO_LARGE,
         "problems[0].reference_answer: 21 characters, at most 20 allowed (setting intake.max_answer_chars)"),
        (_request(_problem(), _problem()), INVALID, "problems[1]: duplicates problems[0]"),
        (_request(records_pb2.Problem(question="Calculate 1 + 2.", reference_answer="3", source="s" * 257)),
         TOO_LARGE, "problems[0].source: 257 characters, at most 256 allowed (setting intake.max_label_chars)"),
        (services_pb2.SubmitBatchRequest(problems=[_problem()], curation_policy="best_vibes"), INVALID,
         "curation_policy: unknown policy 'best_vibes'; known: oracle_refined, oracle_synthesized, "
         "rejection_sampling, style_aligned, utility"),
    ],
    ids=["empty-batch", "empty-question", "empty-answer", "n-too-large", "temperature", "oversized-question",
         "oversized-answer", "oversized-source", "duplicate-problem", "unknown-policy"],
)
def test_bad_input_names_what_was_wrong_and_nothing_of_it_is_published(gateway, request_, code, details):
    stub, bus = gateway
    with pytest.raises(grpc.RpcError) as error:
        stub.SubmitBatch(request_)
    assert (error.value.code(), error.value.details()) == (code, details)
    assert _published_only(bus, stub) == []


def test_a_message_over_the_size_limit_is_refused_by_grpc(gateway):
    stub, bus = gateway
    with pytest.raises(grpc.RpcError) as error:
        stub.SubmitBatch(_request(_problem(question="x" * 2 * 1024 * 1024)))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _published_only(bus, stub) == []


def test_a_request_that_is_not_utf_8_is_invalid_argument(broker):
    problem = b"\x1a\x02\xff\xfe" + b"\x22\x01\x33"  # question: two bytes that are not UTF-8; answer "3"
    raw = b"\x0a" + bytes([len(problem)]) + problem
    with running(SPEC, broker, loops=False) as (service, stub, bus), grpc.insecure_channel(service.target) as channel:
        submit = channel.unary_unary("/learnerfit.v1.Gateway/SubmitBatch")  # bytes as they are
        with pytest.raises(grpc.RpcError) as error:
            submit(raw, timeout=10)
        assert error.value.code() == INVALID
        assert "not a valid learnerfit.v1.SubmitBatchRequest" in error.value.details()
        assert _published_only(bus, stub) == []


def test_a_good_batch_is_published_once_even_when_resubmitted(gateway):
    stub, bus = gateway
    request = _request(_problem(), _problem("Calculate 2 + 2.", "4"), samples_per_problem=2)
    first = stub.SubmitBatch(request)
    second = stub.SubmitBatch(request)
    assert first.batch_id == second.batch_id
    assert not first.already_submitted and second.already_submitted
    assert first.status.problems == 2 and first.status.samples_expected == 4
    published = _published_only(bus, stub)
    assert len(published) == 2
    problem = published[0]
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


def test_oracle_modes_are_checked_and_carried_to_every_problem(gateway):
    stub, bus = gateway
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
    [problem] = [p for p in _published_only(bus, stub) if p.batch_id == asked]
    assert list(problem.oracle_modes) == [records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_REPAIR]


def test_a_submission_that_got_only_part_of_its_problems_onto_the_bus_is_completed_by_its_retry(broker):
    """A first call that failed midway (the broker went away after two of five problems): the retry is not
    `already_submitted`, it publishes the batch, and the batch has all five."""
    from learnerfit.domain.batches import prepare_batch

    with running(SPEC, broker) as (service, stub, bus):
        request = _request(*(_problem(f"Calculate {i} + 3.", str(i + 3)) for i in range(5)), samples_per_problem=1)
        settings = service.settings
        batch_id, problems = prepare_batch(request, settings.intake, settings.sampling, settings.default_policy)
        bus.publish((topics.PROBLEMS, p) for p in problems[:2])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the gateway has folded the two that got through
            try:
                if stub.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id)).problems == 2:
                    break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND
            time.sleep(0.1)
        else:
            pytest.fail("the gateway never folded the partial batch")
        retry = stub.SubmitBatch(request)
        assert retry.batch_id == batch_id and not retry.already_submitted
        assert retry.status.problems == 5
        assert stub.SubmitBatch(request).already_submitted  # now it is whole


def test_a_restarted_gateway_answers_for_every_live_batch_as_before_or_not_at_all(broker):
    """While it folds the topics back, it is NOT_SERVING and answers UNAVAILABLE; never NOT_FOUND for a live batch,
    never a count from a half-read ledger."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from learnerfit.local.processes import channel
    from learnerfit.runtime.app import serving
    from tests.running import settings_for

    prefix = f"restart-{uuid.uuid4().hex[:8]}-"
    with running(SPEC, broker, prefix=prefix) as (_service, stub, _bus):
        before = {}
        for b in range(60):
            request = _request(*(_problem(f"Calculate {b} + {i}.", str(b + i)) for i in range(1, 9)),
                               samples_per_problem=2)
            reply = stub.SubmitBatch(request)
            before[reply.batch_id] = reply.status
    seen = {"unavailable": 0, "answered": 0}
    with serving(SPEC, settings_for(SPEC, broker, prefix)) as restarted, channel(restarted.target) as ch:
        stub, health = services_pb2_grpc.GatewayStub(ch), health_pb2_grpc.HealthStub(ch)
        for batch_id, status in before.items():
            while True:
                said = health.Check(health_pb2.HealthCheckRequest()).status
                try:
                    now = stub.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id), timeout=10)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
                    assert said == health_pb2.HealthCheckResponse.NOT_SERVING  # SERVING is said only once ready
                    seen["unavailable"] += 1
                    time.sleep(0.01)
                    continue
                assert (now.problems, now.samples_expected, now.state) == \
                    (status.problems, status.samples_expected, status.state)
                seen["answered"] += 1
                break
        assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    assert seen["answered"] == len(before)
    print(f"restarted gateway: {seen['unavailable']} calls answered UNAVAILABLE while it caught up")


def test_running_batches_are_bounded_in_memory_as_well_as_in_number(broker):
    with running(SPEC, broker, loops=False, max_live_bytes=1) as (_service, stub, _bus):
        stub.SubmitBatch(_request(_problem()))  # nothing held yet: admitted
        with pytest.raises(grpc.RpcError) as refused:
            stub.SubmitBatch(_request(_problem("Calculate 4 + 4.", "8")))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "(setting max_live_bytes)" in refused.value.details()
        assert stub.SubmitBatch(_request(_problem())).already_submitted  # a retry of what it holds is answered


def test_batches_whose_problems_expired_are_forgotten_once_the_topics_are_read_back(broker):
    """Decisions of a batch whose problems are gone from the topic (the decisions topic is compacted, problems
    expire): a restarted gateway reads them, and forgets the batch once it has read its topics back, so it holds
    no memory; a batch with its problems is kept."""
    from prometheus_client import REGISTRY

    from learnerfit.runtime.bus import Bus

    prefix = f"orphans-{uuid.uuid4().hex[:8]}-"
    bus = Bus(broker.bootstrap_servers, client_id="orphans", topic_prefix=prefix)
    bus.ensure_topics([topics.PROBLEMS, topics.DECISIONS], 1)
    bus.publish((topics.DECISIONS, records_pb2.CurationDecision(id=f"d{i}", batch_id=f"expired-{i}",
                                                                problem_id=f"gone-{i}")) for i in range(5))
    bus.close()
    with running(SPEC, broker, prefix=prefix) as (service, stub, _bus):
        live = stub.SubmitBatch(_request(_problem())).batch_id
        ledger = service.parts.fold.__self__  # the gateway's BatchLedger, which its follower folds into
        deadline = time.monotonic() + 30
        while not all(ledger.forgotten(f"expired-{i}") for i in range(5)):
            assert time.monotonic() < deadline, "the expired batches were never forgotten"
            time.sleep(0.1)
        assert REGISTRY.get_sample_value("learnerfit_state_entries",
                                         {"service": "gateway", "what": "orphan_batches"}) == 0
        assert stub.GetBatch(services_pb2.GetBatchRequest(batch_id=live)).problems == 1
        with pytest.raises(grpc.RpcError) as gone:
            stub.GetBatch(services_pb2.GetBatchRequest(batch_id="expired-0"))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
