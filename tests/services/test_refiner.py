"""The refiner over real gRPC and through the stream, with a scripted Oracle behind the OpenAI protocol.

The Oracle's replies are chosen per problem, so each guardrail is fed the bad output
it exists for; answer checks are real (math-verify), lineage and metadata are ours.
"""

from __future__ import annotations

import grpc
import pytest

from learnerfit.domain import topics
from learnerfit.v1 import records_pb2, services_pb2
from services.refiner import SPEC
from tests.fake_oracle import FakeOracle
from tests.kafka_helpers import read_topic
from tests.running import own_group, running

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


def _oracle_settings(oracle) -> dict:
    return {"backend": "openai", "model": "oracle-model", "endpoint": oracle.endpoint, "max_retries": 0}


def _learner_trace(question: str, text: str, verdict=records_pb2.VERDICT_CORRECT, index=0, batch="b1"):
    problem = records_pb2.Problem(id=f"p-{question}", batch_id=batch, question=question,
                                  reference_answer=ANSWERS[question],
                                  sampling=records_pb2.SamplingSpec(samples_per_problem=2),
                                  oracle_modes=[records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_SYNTHESIZE])
    return records_pb2.Trajectory(id=f"t-{question}-{index}", problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE,
                                  text=text, sample_index=index, scores=records_pb2.Scores(verdict=verdict))


@pytest.fixture(scope="module")
def refiner(oracle, broker):
    with running(SPEC, broker, loops=False, oracle=_oracle_settings(oracle)) as (_, stub, _bus):
        yield stub


def test_refine_keeps_lineage_prompt_version_and_style_measures(refiner):
    parent = _learner_trace("Calculate 2 + 3.", "2 + 3 = 6\nFinal answer: 5")
    [out] = refiner.Refine(services_pb2.RefineRequest(trajectories=[parent],
                                                      mode=records_pb2.ORACLE_MODE_REFINE)).trajectories
    assert out.origin == records_pb2.ORIGIN_ORACLE_REFINED and out.parent_id == parent.id
    assert out.oracle_mode == records_pb2.ORACLE_MODE_REFINE
    assert out.model == "oracle-model" and out.text == "2 + 3 = 5\nFinal answer: 5" and out.final_answer == "5"
    assert list(out.prompt_ids) == ["refine.v1"] and not out.HasField("rejection")
    assert out.style.overlap_with_parent == pytest.approx(7 / 8)  # all of the parent's 8 words but "6"
    assert out.style.latex_density == 0 and out.style.steps == 2
    assert out.problem.id == parent.problem.id and out.id != parent.id


def test_synthesize_solves_from_the_problem_alone(refiner):
    parent = _learner_trace("Calculate 2 + 3.", "whatever the learner wrote")
    [out] = refiner.Refine(services_pb2.RefineRequest(trajectories=[parent],
                                                      mode=records_pb2.ORACLE_MODE_SYNTHESIZE)).trajectories
    assert out.origin == records_pb2.ORIGIN_ORACLE_SYNTHESIZED and out.parent_id == ""
    assert list(out.prompt_ids) == ["synthesize.v1"] and not out.style.HasField("overlap_with_parent")


@pytest.mark.parametrize(("question", "guardrail", "detail"), [
    ("Calculate 4 + 4.", "empty", ""),
    ("Calculate 5 + 1.", "truncated", "stopped at the token limit"),
    ("Calculate 7 - 2.", "meta_text", "'As an AI'"),
    ("Calculate 9 - 3.", "answer_not_verified", "'7' differs from '6'"),
    ("Calculate 8 - 8.", "answer_not_verified", "no final answer"),
])
def test_each_guardrail_rejects_its_bad_output_and_says_why(refiner, question, guardrail, detail):
    parent = _learner_trace(question, "some learner text\nFinal answer: 1")
    [out] = refiner.Refine(services_pb2.RefineRequest(trajectories=[parent],
                                                      mode=records_pb2.ORACLE_MODE_REFINE)).trajectories
    assert (out.rejection.guardrail, out.rejection.detail) == (guardrail, detail)


@pytest.mark.parametrize("mode", [records_pb2.ORACLE_MODE_UNSPECIFIED, records_pb2.ORACLE_MODE_REWRITE])
def test_a_mode_this_service_does_not_do_is_an_invalid_argument_naming_the_field(refiner, mode):
    with pytest.raises(grpc.RpcError) as error:
        refiner.Refine(services_pb2.RefineRequest(trajectories=[_learner_trace("Calculate 2 + 3.", "x")], mode=mode))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith("mode: must be ORACLE_MODE_REFINE or ORACLE_MODE_SYNTHESIZE")


def test_the_stage_takes_learner_samples_and_routes_rejects_to_their_own_topic(oracle, broker):
    inputs = [
        _learner_trace("Calculate 2 + 3.", "2 + 3 = 5\nFinal answer: 5", index=0),       # refine + synthesize
        _learner_trace("Calculate 2 + 3.", "2 + 3 = 4\nFinal answer: 4", records_pb2.VERDICT_INCORRECT, index=1),
        _learner_trace("Calculate 9 - 3.", "9 - 3 = 6\nFinal answer: 6", index=1),       # refine -> rejected
    ]
    oracle_output = records_pb2.Trajectory(id="already-oracle", origin=records_pb2.ORIGIN_ORACLE_REFINED,
                                           problem=inputs[0].problem, text="x")
    stage = {"max_wait_s": 0.5, "group": own_group("refiner")}
    with running(SPEC, broker, oracle=_oracle_settings(oracle), stage=stage) as (_, _stub, bus):
        bus.publish((topics.SCORED, t) for t in [*inputs, oracle_output])
        accepted = [records_pb2.Trajectory.FromString(r.value)
                    for r in read_topic(bus, topics.TRAJECTORIES, at_least=2, timeout_s=60)]
        rejected = [records_pb2.Trajectory.FromString(r.value)
                    for r in read_topic(bus, topics.ORACLE_REJECTED, at_least=1, timeout_s=30)]
    assert sorted((t.origin, t.parent_id) for t in accepted) == [
        (records_pb2.ORIGIN_ORACLE_REFINED, inputs[0].id), (records_pb2.ORIGIN_ORACLE_SYNTHESIZED, "")]
    assert [(t.parent_id, t.rejection.guardrail, t.rejection.detail) for t in rejected] == [
        (inputs[2].id, "answer_not_verified", "'7' differs from '6'")]


def test_an_oracle_that_is_down_then_back_delays_records_and_one_down_past_the_retry_budget_dead_letters_them(broker):
    """Refusing, then slow, then back: the records wait and complete. Down past the stage's retry budget: each is
    dead-lettered once, as transient, with the endpoint's last answer."""
    from tests.kafka_helpers import dead_letters

    oracle = FakeOracle(_responder)
    try:
        oracle.script = [(503, {"error": {"message": "overloaded"}}, {}, 0.0)] * 4 + [(200, None, {}, 1.5)]
        trace = _learner_trace("Calculate 2 + 3.", "2 + 3 = 5\nFinal answer: 5")
        stage = {"max_wait_s": 0.2, "retry_budget_s": 60, "retry_initial_s": 0.2, "retry_max_s": 1, "group": own_group("refiner")}
        with running(SPEC, broker, oracle=_oracle_settings(oracle), stage=stage) as (_, _stub, bus):
            bus.publish([(topics.SCORED, trace)])
            accepted = read_topic(bus, topics.TRAJECTORIES, at_least=2, timeout_s=60)
            assert dead_letters(bus, timeout_s=1) == []
        assert len(accepted) == 2  # refined and synthesized, once each
        assert len(oracle.requests) >= 5  # four refusals before the endpoint came back

        oracle.script = [(503, {"error": {"message": "overloaded"}}, {}, 0.0)] * 1000
        down = _learner_trace("Calculate 2 + 3.", "2 + 3 = 5\nFinal answer: 5", batch="b-down")
        stage = {"max_wait_s": 0.2, "retry_budget_s": 2, "retry_initial_s": 0.2, "retry_max_s": 0.5, "group": own_group("refiner")}
        with running(SPEC, broker, oracle=_oracle_settings(oracle), stage=stage) as (_, _stub, bus):
            bus.publish([(topics.SCORED, down)])
            [letter] = dead_letters(bus, at_least=1, timeout_s=60)
            assert read_topic(bus, topics.TRAJECTORIES, timeout_s=1) == []
    finally:
        oracle.close()
    assert letter.transient and letter.stage == "refiner" and letter.record_id == down.id
    assert "503: overloaded" in letter.reason and letter.attempts > 1


def test_the_rule_based_teacher_behind_the_refiner_writes_right_solutions_and_refuses_by_name(broker):
    """The same service, the Oracle asked by task: the teacher computes; what it cannot read is rejected with why."""
    teacher = {"backend": "teacher", "teacher_register": "latex"}
    with running(SPEC, broker, loops=False, oracle=teacher) as (_, stub, _bus):
        lucky = records_pb2.Trajectory(
            id="t-lucky", origin=records_pb2.ORIGIN_LEARNER_SAMPLE, text="4 * 2 = 9\n3 + 9 = 11\nFinal answer: 11",
            problem=records_pb2.Problem(id="p1", batch_id="b", question="Calculate 3 + 4 * 2.", reference_answer="11"))
        prose = records_pb2.Trajectory(id="t-prose", origin=records_pb2.ORIGIN_LEARNER_SAMPLE, text="Paris",
                                       problem=records_pb2.Problem(id="p2", batch_id="b", reference_answer="Paris",
                                                                   question="What is the capital of France?"))
        refined, refused = stub.Refine(services_pb2.RefineRequest(trajectories=[lucky, prose],
                                                                  mode=records_pb2.ORACLE_MODE_REFINE)).trajectories
    assert not refined.HasField("rejection") and refined.final_answer == "11"
    assert refined.model == "rule-teacher-v1/latex" and list(refined.prompt_ids) == ["teacher.refine.v1"]
    assert "\\[ 4 \\times 2 = 8 \\]" in refined.text and "\\[ 3 + 8 = 11 \\]" in refined.text  # corrected, in LaTeX
    assert refined.style.latex_density > 0.2 and refined.parent_id == lucky.id
    assert refused.rejection.guardrail == "oracle_unable" and "not a number" in refused.rejection.detail
