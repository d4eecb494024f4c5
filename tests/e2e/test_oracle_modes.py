"""A batch with all four Oracle modes through the whole local stack: the real SmolLM2 learner, the rule-based teacher.

Everything is real: broker, the service processes, the Oracle (the teacher, asked by
task), answer checks, reward model, learner perplexity. (Before the teacher existed this
test scripted an Oracle behind the OpenAI protocol.)
"""

from __future__ import annotations

import time

import pytest

from learnerfit.domain import topics
from learnerfit.domain.oracle.arithmetic import find_equations
from learnerfit.domain.problems import EASY_ARITHMETIC, from_reasoning_gym
from learnerfit.domain.records import split_steps
from learnerfit.local.processes import channel
from learnerfit.local.stack import LocalStack
from learnerfit.runtime.bus import Bus
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from tests.kafka_helpers import read_topic

MODES = {records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_SYNTHESIZE, records_pb2.ORACLE_MODE_REWRITE,
         records_pb2.ORACLE_MODE_REPAIR}


@pytest.mark.slow
def test_every_oracle_origin_comes_back_with_lineage_scores_and_style(tmp_path, reward_model_dir):
    teacher = {"oracle": {"backend": "teacher", "teacher_register": "mixed"}}
    stack = LocalStack(tmp_path / "stack", start_timeout_s=300, config={
        "generator": {"stage": {"max_batch": 4}}, "refiner": teacher, "style_aligner": teacher,
        "trainer": {"registry_dir": str(tmp_path / "registry")}, "registry": {"registry_dir": str(tmp_path / "registry")}})
    stack.start()
    try:
        gateway = services_pb2_grpc.GatewayStub(channel(stack.state.services["gateway"].grpc_target))
        request = services_pb2.SubmitBatchRequest(
            problems=from_reasoning_gym("basic_arithmetic", 6, seed=0, options=EASY_ARITHMETIC),
            sampling=records_pb2.SamplingSpec(samples_per_problem=6, max_new_tokens=48, temperature=0.7, seed=0),
            curation_policy="utility",
            oracle_modes=[records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_SYNTHESIZE,
                          records_pb2.ORACLE_MODE_REWRITE, records_pb2.ORACLE_MODE_REPAIR])
        batch_id = gateway.SubmitBatch(request).batch_id
        deadline = time.monotonic() + 900
        status = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id))
        while status.state != records_pb2.BATCH_STATE_COMPLETE and time.monotonic() < deadline:
            stack.check_alive()
            time.sleep(2)
            status = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id))
        assert status.state == records_pb2.BATCH_STATE_COMPLETE, status
        bus = Bus(stack.state.bootstrap_servers, client_id="e2e-oracle")
        try:
            scored = [records_pb2.Trajectory.FromString(r.value) for r in read_topic(bus, topics.SCORED)]
            rejected = [records_pb2.Trajectory.FromString(r.value) for r in read_topic(bus, topics.ORACLE_REJECTED)]
            curated = [records_pb2.CuratedExample.FromString(r.value) for r in read_topic(bus, topics.CURATED)]
        finally:
            bus.close()
    finally:
        stack.stop()

    learner = {t.id: t for t in scored if t.origin == records_pb2.ORIGIN_LEARNER_SAMPLE}
    oracle_outputs = [t for t in scored if t.origin != records_pb2.ORIGIN_LEARNER_SAMPLE]
    assert status.oracle_expected > 0
    assert len(oracle_outputs) + len(rejected) == status.oracle_expected
    assert (status.oracle_scored, status.oracle_rejected) == (len(oracle_outputs), len(rejected))
    by_origin = {}
    for t in oracle_outputs:
        by_origin.setdefault(t.origin, []).append(t)
    # The learner solves some of these easy problems and fails others, so every mode has input.
    assert set(by_origin) == {records_pb2.ORIGIN_ORACLE_REFINED, records_pb2.ORIGIN_ORACLE_SYNTHESIZED,
                              records_pb2.ORIGIN_STYLE_ALIGNED}, {records_pb2.Origin.Name(o) for o in by_origin}
    # Every mode has accepted outputs: the learner solves some of these easy problems and slips on others.
    assert {t.oracle_mode for t in oracle_outputs} == MODES, {t.oracle_mode for t in oracle_outputs}
    for t in oracle_outputs:
        assert t.model == "rule-teacher-v1/mixed" and t.prompt_ids and t.HasField("style") and t.oracle_mode
        assert t.scores.verdict == records_pb2.VERDICT_CORRECT  # accepted outputs verified before they left
        assert t.scores.HasField("reward") and t.scores.HasField("ppl") and t.scores.drift_checkpoint == "base"
        if t.origin != records_pb2.ORIGIN_ORACLE_SYNTHESIZED:
            assert t.parent_id in learner and t.style.HasField("overlap_with_parent")
    for t in rejected:
        assert t.rejection.guardrail and not t.scores.HasField("ppl")  # never scored or curated
    # The utility policy chose among all origins, after every Oracle output had arrived, and says why.
    assert len(curated) == status.curated > 0
    for example in curated:
        assert example.policy == "utility" and example.HasField("utility")
        assert example.reason.startswith("highest utility") and example.scores.verdict == records_pb2.VERDICT_CORRECT
        # Whatever the exact trade-off, no correct candidate of the problem is at least as good on both sides
        # (reward up, perplexity down) and clearly better on one: the chosen trace is on the Pareto front. (A
        # repair that equals a learner sample word for word is collapsed into it; its scores differ from the
        # sample's only by batching round-off, hence the margin.)
        rivals = [t for t in scored if t.problem.id == example.problem_id and t.id != example.trajectory_id
                  and t.scores.verdict == records_pb2.VERDICT_CORRECT]
        chosen = example.scores
        assert not [t for t in rivals if t.scores.reward >= chosen.reward - 1e-6 and t.scores.ppl <= chosen.ppl + 1e-6
                    and (t.scores.reward > chosen.reward + 1e-3 or t.scores.ppl < chosen.ppl - 1e-3)]
    repairs = [t for t in oracle_outputs + rejected if t.oracle_mode == records_pb2.ORACLE_MODE_REPAIR]
    assert repairs and all(learner[t.parent_id].scores.verdict == records_pb2.VERDICT_INCORRECT for t in repairs)
    for t in repairs:
        if t.text:  # the teacher's fixed step is the line before the learner's continuation, and it is right
            step = int(t.metadata["repair.step"])
            fixed = split_steps(t.text)[step - 1]
            assert all(not e.wrong() for e in find_equations(fixed)), fixed
    for t in oracle_outputs:
        if t.oracle_mode in (records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_SYNTHESIZE,
                             records_pb2.ORACLE_MODE_REWRITE):  # the teacher's own text: every equation right
            assert all(not e.wrong() for line in split_steps(t.text) for e in find_equations(line)), t.text
