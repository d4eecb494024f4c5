"""The refiner over real gRPC and through the stream, with a scripted Oracle behind the OpenAI protocol.

The Oracle's replies are chosen per problem, so each guardrail is fed the bad output
it exists for; answer checks are real (math-verify), lineage and metadata are ours.
"""

from __future__ import annotations

import grpc
import pytest

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.common import topics
from services.common.bus import Bus
from services.common.grpc_runtime import GrpcServer, channel
from services.common.stage_runner import StageRunner
from services.oracle.selection import REJECTED
from services.refiner.__main__ import build
from services.refiner.settings import RefinerSettings
from tests.fake_oracle import FakeOracle
from tests.kafka_helpers import read_topic

# question -> (Oracle reply, finish_reason)
REPLIES = {
    "Calculate 2 + 3.": ("2 + 3 = 5\nFinal answer: 5", "stop"),
    "Calculate 4 + 4.": ("", "stop"),
    "Calculate 5 + 1.": ("5 + 1 = 6\n6 + 0 = 6 and then", "length"),
    "Calculate 7 - 2.": ("As an AI, I checked the reference answer: 7 - 2 = 5\nFinal answer: 5", "stop"),
    "Calculate 9 - 3.": ("9 - 3 = 7\nFinal answer: 7", "stop"),
    "Calculate 8 - 8.": ("8 - 8 is nothing much", "stop"),
}
ANSWERS = {"Calculate 2 + 3.": "5", "Calculate 4 + 4.": "8", "Calculate 5 + 1.": "6", "Calculate 7 - 2.": "5",
           "Calculate 9 - 3.": "6", "Calculate 8 - 8.": "0"}


def _responder(body, _index):
    question = next(q for q in REPLIES if q in body["messages"][-1]["content"])
    return REPLIES[question]


@pytest.fixture(scope="module")
def oracle():
    server = FakeOracle(_responder)
    yield server
    server.close()


def _settings(oracle, **overrides) -> RefinerSettings:
    return RefinerSettings(backend="openai", model="oracle-model", endpoint=oracle.endpoint, max_retries=0,
                           **overrides)


def _learner_trace(question: str, text: str, verdict=records_pb2.VERDICT_CORRECT, index=0, batch="b1"):
    problem = records_pb2.Problem(id=f"p-{question}", batch_id=batch, question=question,
                                  reference_answer=ANSWERS[question],
                                  sampling=records_pb2.SamplingSpec(samples_per_problem=2),
                                  oracle_modes=[records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_SYNTHESIZE])
    return records_pb2.Trajectory(id=f"t-{question}-{index}", problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE,
                                  text=text, sample_index=index, scores=records_pb2.Scores(verdict=verdict))


@pytest.fixture(scope="module")
def refiner(oracle, broker):
    parts = build(_settings(oracle, bootstrap_servers=broker.bootstrap_servers), bus=None)
    server = GrpcServer("127.0.0.1", 0, workers=2, max_message_bytes=4 * 1024 * 1024)
    server.add(parts.register, parts.service_names)
    server.start()
    with channel(f"127.0.0.1:{server.port}") as ch:
        yield services_pb2_grpc.RefinerStub(ch)
    server.stop(0)
    parts.on_stop()


def test_refine_keeps_lineage_prompt_version_and_style_measures(refiner):
    parent = _learner_trace("Calculate 2 + 3.", "2 + 3 = 6\nFinal answer: 5")
    [out] = refiner.Refine(services_pb2.RefineRequest(trajectories=[parent],
                                                      mode=services_pb2.REFINE_MODE_REFINE)).trajectories
    assert out.origin == records_pb2.ORIGIN_ORACLE_REFINED and out.parent_id == parent.id
    assert out.model == "oracle-model" and out.text == "2 + 3 = 5\nFinal answer: 5" and out.final_answer == "5"
    assert out.metadata["prompt"] == "refine.v1" and REJECTED not in out.metadata
    assert float(out.metadata["style.overlap_with_parent"]) == pytest.approx(7 / 8)  # all of the parent's 8 words but "6"
    assert out.metadata["style.latex_density"] == "0.000" and out.metadata["style.steps"] == "2"
    assert out.problem.id == parent.problem.id and out.id != parent.id


def test_synthesize_solves_from_the_problem_alone(refiner):
    parent = _learner_trace("Calculate 2 + 3.", "whatever the learner wrote")
    [out] = refiner.Refine(services_pb2.RefineRequest(trajectories=[parent],
                                                      mode=services_pb2.REFINE_MODE_SYNTHESIZE)).trajectories
    assert out.origin == records_pb2.ORIGIN_ORACLE_SYNTHESIZED and out.parent_id == ""
    assert out.metadata["prompt"] == "synthesize.v1" and "style.overlap_with_parent" not in out.metadata


@pytest.mark.parametrize(("question", "reason"), [
    ("Calculate 4 + 4.", "empty"),
    ("Calculate 5 + 1.", "truncated"),
    ("Calculate 7 - 2.", "meta_text: 'As an AI'"),
    ("Calculate 9 - 3.", "answer_not_verified: '7' differs from '6'"),
    ("Calculate 8 - 8.", "answer_not_verified: no final answer"),
])
def test_each_guardrail_rejects_its_bad_output_and_says_why(refiner, question, reason):
    parent = _learner_trace(question, "some learner text\nFinal answer: 1")
    [out] = refiner.Refine(services_pb2.RefineRequest(trajectories=[parent],
                                                      mode=services_pb2.REFINE_MODE_REFINE)).trajectories
    assert out.metadata[REJECTED] == reason


def test_mode_is_required(refiner):
    with pytest.raises(grpc.RpcError) as error:
        refiner.Refine(services_pb2.RefineRequest(trajectories=[_learner_trace("Calculate 2 + 3.", "x")]))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "mode" in error.value.details()


def test_the_stage_takes_learner_samples_and_routes_rejects_to_their_own_topic(oracle, broker, fresh):
    settings = _settings(oracle, bootstrap_servers=broker.bootstrap_servers, scored_topic=fresh("scored"),
                         trajectories_topic=fresh("trajectories"), rejected_topic=fresh("rejected"))
    bus = Bus(broker.bootstrap_servers, client_id="refiner-test", session_timeout_ms=6000)
    parts = build(settings, bus)
    bus.ensure_topics(parts.topics + [topics.DEAD_LETTER], partitions=1)
    inputs = [
        _learner_trace("Calculate 2 + 3.", "2 + 3 = 5\nFinal answer: 5", index=0),       # refine + synthesize
        _learner_trace("Calculate 2 + 3.", "2 + 3 = 4\nFinal answer: 4", records_pb2.VERDICT_INCORRECT, index=1),
        _learner_trace("Calculate 9 - 3.", "9 - 3 = 6\nFinal answer: 6", index=1),       # refine -> rejected
    ]
    oracle_output = records_pb2.Trajectory(id="already-oracle", origin=records_pb2.ORIGIN_ORACLE_REFINED,
                                           problem=inputs[0].problem, text="x")
    bus.confirm([bus.send(settings.scored_topic, t) for t in [*inputs, oracle_output]])
    runner = StageRunner(parts.stages[0], bus, group_id=fresh("refiner"), dead_letter_topic=topics.DEAD_LETTER,
                         max_batch=8, max_wait_s=0.5)
    try:
        processed = 0
        for _ in range(40):
            processed += runner.step()
            if processed >= 4:
                break
        accepted = [records_pb2.Trajectory.FromString(r.value)
                    for r in read_topic(bus, settings.trajectories_topic, at_least=2)]
        rejected = [records_pb2.Trajectory.FromString(r.value)
                    for r in read_topic(bus, settings.rejected_topic, at_least=1)]
    finally:
        runner.close()
        parts.on_stop()
        bus.close()
    assert sorted((t.origin, t.parent_id) for t in accepted) == [
        (records_pb2.ORIGIN_ORACLE_REFINED, inputs[0].id), (records_pb2.ORIGIN_ORACLE_SYNTHESIZED, "")]
    assert [(t.parent_id, t.metadata[REJECTED]) for t in rejected] == [
        (inputs[2].id, "answer_not_verified: '7' differs from '6'")]
