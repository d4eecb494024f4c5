"""The style aligner over real gRPC: a scripted Oracle (OpenAI protocol) and the real SmolLM2 learner.

rewrite: the prompt carries the learner's trace and a style card measured on the
learner's samples; a rewrite that keeps too little of the learner's words is
rejected. repair: the Oracle names the first wrong step and fixes that line; the
real learner continues from the repaired prefix; the result is kept only if it
verifies.
"""

from __future__ import annotations

import pytest

from learnerfit.domain.oracle.prompted import first_wrong_step
from learnerfit.v1 import records_pb2, services_pb2
from services.style_aligner import SPEC
from tests.fake_oracle import FakeOracle
from tests.running import running

REWRITES = {
    "Calculate 6 + 2.": "6 + 2 = 8\nFinal answer: 8",  # keeps the learner's lines
    "Calculate 3 + 3.": "We are asked to add three and three. Adding gives six, so the answer is \\boxed{6}.\n"
                        "Final answer: 6",  # correct but in another voice
}


def _responder(body, _index):
    prompt = body["messages"][-1]["content"]
    if "Which is the first step that is wrong?" in prompt:
        return ("1" if "7 + 1 = 9" in prompt else "0"), "stop"
    if "Write the corrected version of that one step" in prompt:
        return "7 + 1 = 8", "stop"
    question = next(q for q in REWRITES if q in prompt)
    return REWRITES[question], "stop"


@pytest.fixture(scope="module")
def oracle():
    server = FakeOracle(_responder)
    yield server
    server.close()


@pytest.fixture(scope="module")
def aligner(oracle, broker):
    with running(SPEC, broker, loops=False, repair_max_new_tokens=24,
                 oracle={"backend": "openai", "model": "oracle-model", "endpoint": oracle.endpoint,
                         "max_retries": 0}) as (_, stub, _bus):
        yield stub


def _trace(question: str, answer: str, text: str, verdict=records_pb2.VERDICT_CORRECT) -> records_pb2.Trajectory:
    problem = records_pb2.Problem(id=f"p-{question}", batch_id="b", question=question, reference_answer=answer)
    return records_pb2.Trajectory(id=f"t-{question}", problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE,
                                  text=text, scores=records_pb2.Scores(verdict=verdict))


def _align(aligner, mode, *traces):
    return aligner.Align(services_pb2.AlignRequest(trajectories=traces, mode=mode)).trajectories


def test_rewrite_sends_the_trace_and_a_style_card_and_keeps_the_learners_words(aligner, oracle):
    parent = _trace("Calculate 6 + 2.", "8", "6 + 2 = 8\nFinal answer: 8")
    [out] = _align(aligner, records_pb2.ORACLE_MODE_REWRITE, parent)
    assert out.origin == records_pb2.ORIGIN_STYLE_ALIGNED and out.parent_id == parent.id
    assert not out.HasField("rejection") and list(out.prompt_ids) == ["rewrite.v1"]
    assert out.oracle_mode == records_pb2.ORACLE_MODE_REWRITE and out.style.overlap_with_parent == 1.0
    prompt = next(b for b in oracle.requests if "6 + 2 = 8" in b["messages"][-1]["content"])["messages"][-1]["content"]
    assert "lines per solution" in prompt and "final answer written as: 'Final answer:'" in prompt


def test_a_rewrite_in_another_voice_is_rejected_for_low_overlap(aligner):
    parent = _trace("Calculate 3 + 3.", "6", "3 + 3 = 6\nFinal answer: 6")
    [out] = _align(aligner, records_pb2.ORACLE_MODE_REWRITE, parent)
    # Of the learner's 8 words only "Final answer: 6" (3) survive in order: 3/8 = 0.375.
    assert (out.rejection.guardrail, out.rejection.detail) == (
        "low_overlap", "kept 0.38 of the learner's words, needs 0.50")


def test_repair_fixes_the_first_wrong_step_and_the_learner_finishes(aligner):
    parent = _trace("Calculate 7 + 1.", "8", "7 + 1 = 9\nFinal answer: 9", records_pb2.VERDICT_INCORRECT)
    [out] = _align(aligner, records_pb2.ORACLE_MODE_REPAIR, parent)
    prefix = "7 + 1 = 8\n"  # the Oracle's corrected line replaces the wrong step 1
    assert out.text.startswith(prefix) and len(out.text) > len(prefix)  # then the learner's own continuation
    assert out.metadata["repair.step"] == "1" and out.metadata["repair.continued_by"] == "smollm2-135m-instruct"
    assert list(out.prompt_ids) == ["repair_locate.v1", "repair_step.v1"] and out.style.HasField("overlap_with_parent")
    assert out.oracle_mode == records_pb2.ORACLE_MODE_REPAIR
    # Kept only if what the learner wrote verifies. Greedy SmolLM2 (deterministic) adds "1 + 8 = 9" and stops
    # without a final answer, so this one is rejected: the guardrail on a real continuation.
    assert (out.rejection.guardrail, out.rejection.detail) == ("answer_not_verified", "no final answer"), out.text


def test_repair_is_rejected_when_the_oracle_names_no_wrong_step(aligner):
    parent = _trace("Calculate 6 + 2.", "8", "6 + 2 = 9\nFinal answer: 9", records_pb2.VERDICT_INCORRECT)
    [out] = _align(aligner, records_pb2.ORACLE_MODE_REPAIR, parent)
    assert (out.rejection.guardrail, out.rejection.detail) == ("no_wrong_step",
                                                               "the Oracle named no step of the 2 as wrong")
    assert out.text == ""


@pytest.mark.parametrize(("reply", "steps", "expected"), [
    ("2", 3, 2), ("Step 3 is wrong.", 3, 3), ("0", 3, None), ("7", 3, None), ("none", 3, None)])
def test_the_named_step_is_read_from_the_oracles_reply(reply, steps, expected):
    assert first_wrong_step(reply, steps) == expected


def test_the_rule_based_teacher_rewrites_in_the_learners_lines_and_locates_the_step_to_repair(broker):
    teacher = {"backend": "teacher", "teacher_register": "latex"}  # the register never reaches the learner's lines
    with running(SPEC, broker, loops=False, repair_max_new_tokens=24, oracle=teacher) as (_, stub, _bus):
        lucky = _trace("Calculate 3 + 4 * 2.", "11", "4 * 2 = 9\n3 + 9 = 11\nFinal answer: 11")
        [rewritten] = _align(stub, records_pb2.ORACLE_MODE_REWRITE, lucky)
        wrong = _trace("Calculate 6 * 3.", "18", "6 * 3 = 16\nFinal answer: 16", records_pb2.VERDICT_INCORRECT)
        [repaired] = _align(stub, records_pb2.ORACLE_MODE_REPAIR, wrong)
    assert rewritten.text == "4 * 2 = 8\n3 + 8 = 11\nFinal answer: 11" and not rewritten.HasField("rejection")
    assert rewritten.model == "rule-teacher-v1/latex" and rewritten.style.latex_density == 0
    assert repaired.text.startswith("6 * 3 = 18\n") and repaired.metadata["repair.step"] == "1"
    assert "its arithmetic is wrong" in repaired.metadata["repair.located"]
    assert repaired.metadata["repair.continued_by"] == "smollm2-135m-instruct"  # the learner wrote the rest
