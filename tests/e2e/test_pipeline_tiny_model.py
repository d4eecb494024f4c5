"""End to end on the local stack with a tiny random learner: every stage as its own process, real broker."""

from __future__ import annotations

import time

import pytest

from learnerfit.local.stack import LocalStack
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from learnerfit.models.settings import REWARD_MINILM
from learnerfit.domain import topics
from learnerfit.runtime.bus import Bus
from learnerfit.local.processes import channel
from tests.kafka_helpers import read_topic


@pytest.fixture(scope="module")
def stack(tiny_model, reward_model_dir, tmp_path_factory):
    # The tiny learner samples and is measured for drift; the reward model is the real local one.
    local = LocalStack(tmp_path_factory.mktemp("stack"), start_timeout_s=120,
                       service_env={name: {"LEARNERFIT_MODEL": str(tiny_model), "LEARNERFIT_LEARNER_MODEL": str(tiny_model)}
                                    for name in ("generator", "drift_scorer", "refiner", "style_aligner")})
    local.start()
    yield local
    local.stop()


def _stub(stack, service: str, stub_type):
    return stub_type(channel(stack.state.services[service].grpc_target))


def _wait_for(stack, gateway, batch_id: str, done, timeout_s: float) -> records_pb2.BatchStatus:
    """Polls the batch's status until done(status) or timeout_s; returns the last status seen."""
    deadline = time.monotonic() + timeout_s
    status = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id))
    while not done(status) and time.monotonic() < deadline:
        stack.check_alive()
        time.sleep(0.5)
        status = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id))
    return status


def _complete(status: records_pb2.BatchStatus) -> bool:
    return status.state == records_pb2.BATCH_STATE_COMPLETE


def _problems(count: int) -> list[records_pb2.Problem]:
    return [records_pb2.Problem(question=f"Calculate {i} + 1.", reference_answer=str(i + 1), source=f"test#{i}")
            for i in range(count)]


def test_a_batch_flows_through_every_stage_and_its_counts_add_up(stack):
    gateway = _stub(stack, "gateway", services_pb2_grpc.GatewayStub)
    request = services_pb2.SubmitBatchRequest(
        problems=_problems(4), sampling=records_pb2.SamplingSpec(samples_per_problem=3, max_new_tokens=8, seed=1))
    batch_id = gateway.SubmitBatch(request).batch_id

    status = _wait_for(stack, gateway, batch_id, _complete, timeout_s=120)

    assert status.state == records_pb2.BATCH_STATE_COMPLETE
    assert (status.problems, status.samples_expected) == (4, 12)
    assert status.samples_scored == 12  # problems x N, each scored once
    assert status.problems_decided == 4
    assert status.samples_correct + status.samples_unparsed <= status.samples_scored
    # The summary by origin and verdict covers every scored sample, with both measurements.
    assert sum(s.samples for s in status.summaries) == 12
    assert all(s.origin == records_pb2.ORIGIN_LEARNER_SAMPLE and s.HasField("mean_reward") for s in status.summaries)
    streamed = list(gateway.StreamResults(services_pb2.StreamResultsRequest(batch_id=batch_id), timeout=30))
    assert len(streamed) == status.curated

    # What the curator saw: each trajectory with both measurements, quality and compatibility.
    bus = Bus(stack.state.bootstrap_servers, client_id="e2e-reader")
    try:
        scored = [records_pb2.Trajectory.FromString(r.value) for r in read_topic(bus, topics.SCORED, at_least=12)]
    finally:
        bus.close()
    ours = [t for t in scored if t.problem.batch_id == batch_id]
    assert len(ours) == 12
    for trajectory in ours:
        scores = trajectory.scores
        assert scores.reward_model == REWARD_MINILM and scores.HasField("reward")
        assert scores.drift_checkpoint == "base"
        assert {"style.latex_density", "style.mean_step_words", "style.steps"} <= set(trajectory.metadata)
        if trajectory.text:
            assert scores.HasField("ppl") and scores.ppl > 1 and scores.token_count > 0
            assert 1 <= len(scores.segment_ppl) <= 4 and scores.top_loss_tokens


def test_the_generator_answers_over_grpc_with_n_samples_per_problem(stack):
    generator = _stub(stack, "generator", services_pb2_grpc.GeneratorStub)
    problems = _problems(2)
    for problem in problems:
        problem.id, problem.batch_id = f"direct-{problem.source}", "direct"
        problem.sampling.CopyFrom(records_pb2.SamplingSpec(samples_per_problem=2, max_new_tokens=6, seed=3))
    reply = generator.Generate(services_pb2.GenerateRequest(problems=problems))
    assert len(reply.trajectories) == 4
    assert {t.problem.id for t in reply.trajectories} == {p.id for p in problems}
    assert sorted(t.sample_index for t in reply.trajectories) == [0, 0, 1, 1]
    assert all(t.origin == records_pb2.ORIGIN_LEARNER_SAMPLE and t.checkpoint == "base" for t in reply.trajectories)
    assert all(0 < t.completion_tokens <= 6 for t in reply.trajectories)
    assert len({t.id for t in reply.trajectories}) == 4


def test_scoring_and_curation_answer_directly_over_grpc(stack):
    problem = records_pb2.Problem(id="p-direct", batch_id="direct", question="Calculate 2 + 2.", reference_answer="4",
                                  sampling=records_pb2.SamplingSpec(samples_per_problem=2))
    candidates = [
        records_pb2.Trajectory(id="t0", problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE, sample_index=0,
                               text="2 + 2 = 5\nFinal answer: 5"),
        records_pb2.Trajectory(id="t1", problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE, sample_index=1,
                               text="2 + 2 = 4\nFinal answer: 4"),
    ]
    scorer = _stub(stack, "reward_scorer", services_pb2_grpc.RewardScorerStub)
    scored = scorer.ScoreTrajectories(services_pb2.ScoreTrajectoriesRequest(trajectories=candidates)).trajectories
    assert [t.scores.verdict for t in scored] == [records_pb2.VERDICT_INCORRECT, records_pb2.VERDICT_CORRECT]

    curator = _stub(stack, "curator", services_pb2_grpc.CuratorStub)
    curated = curator.Curate(services_pb2.CurateRequest(trajectories=scored, policy="rejection_sampling"))
    assert [d.chosen_trajectory_id for d in curated.decisions] == ["t1"]
    assert curated.examples[0].messages[-1].content == "2 + 2 = 4\nFinal answer: 4"


def test_a_crashed_curator_restarts_where_it_left_off_and_the_batch_completes(stack):
    gateway = _stub(stack, "gateway", services_pb2_grpc.GatewayStub)
    stack.kill("curator")
    request = services_pb2.SubmitBatchRequest(
        problems=_problems(3), sampling=records_pb2.SamplingSpec(samples_per_problem=2, max_new_tokens=6, seed=7))
    batch_id = gateway.SubmitBatch(request).batch_id

    # Samples are scored while the curator is down: they wait on the topic, uncommitted.
    status = _wait_for(stack, gateway, batch_id, lambda s: s.samples_scored >= 6, timeout_s=60)
    assert status.samples_scored == 6 and status.problems_decided == 0

    stack.restart("curator")
    status = _wait_for(stack, gateway, batch_id, _complete, timeout_s=60)
    assert status.state == records_pb2.BATCH_STATE_COMPLETE
    assert status.problems_decided == 3 and status.samples_scored == 6
