"""End to end on the local stack with a tiny learner: every service as its own process, real broker, real gRPC.

The learner is the tiny model taught to answer "1 + 1 = 2 / Final answer: 2" to anything,
so it is right on "Calculate 1 + 1." and wrong elsewhere: curation has something to keep.
"""

from __future__ import annotations

import time
import urllib.request

import pytest

from learnerfit.domain import topics
from learnerfit.local.processes import channel
from learnerfit.models.settings import REWARD_MINILM
from learnerfit.runtime.bus import Bus
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from tests.conftest import LONGEST_SCORED_QUESTION
from tests.kafka_helpers import read_topic


@pytest.fixture(scope="module")
def stack(tiny_pipeline):
    return tiny_pipeline


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


def _problems(count: int, tag: str = "") -> list[records_pb2.Problem]:
    """Calculate 0 + 1, 1 + 1, ...: the tiny learner gets exactly 1 + 1 right."""
    return [records_pb2.Problem(question=f"Calculate {i} + 1.", reference_answer=str(i + 1), source=f"test{tag}#{i}")
            for i in range(count)]


def test_a_batch_flows_through_every_stage_and_its_counts_add_up(stack):
    gateway = _stub(stack, "gateway", services_pb2_grpc.GatewayStub)
    request = services_pb2.SubmitBatchRequest(
        problems=_problems(4), sampling=records_pb2.SamplingSpec(samples_per_problem=3, max_new_tokens=16, seed=1))
    batch_id = gateway.SubmitBatch(request).batch_id

    status = _wait_for(stack, gateway, batch_id, _complete, timeout_s=120)

    assert status.state == records_pb2.BATCH_STATE_COMPLETE
    assert (status.problems, status.samples_expected, status.samples_scored) == (4, 12, 12)
    # Every sample says "Final answer: 2": right for 1 + 1 (3 samples), wrong for the other three problems.
    assert (status.samples_correct, status.samples_unparsed) == (3, 0)
    assert (status.problems_decided, status.curated) == (4, 1)
    summaries = {records_pb2.Verdict.Name(s.verdict): s for s in status.summaries}
    assert {name: s.samples for name, s in summaries.items()} == {"VERDICT_CORRECT": 3, "VERDICT_INCORRECT": 9}
    assert all(s.HasField("mean_reward") and s.HasField("mean_ppl") for s in status.summaries)
    [example] = gateway.StreamResults(services_pb2.StreamResultsRequest(batch_id=batch_id), timeout=30)
    assert example.messages[-2].content == "Calculate 1 + 1." and example.messages[-1].content.endswith(
        "Final answer: 2")
    assert example.origin == records_pb2.ORIGIN_LEARNER_SAMPLE and example.checkpoint == "base"

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
        assert scores.drift_checkpoint == "base" and trajectory.style.steps == 2
        assert scores.HasField("ppl") and scores.ppl >= 1 and scores.token_count > 0
        assert len(scores.segment_ppl) == 4 and scores.top_loss_tokens


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


def _outcome(gateway, batch_id: str) -> dict[str, str]:
    """Per problem question: the curated solution (only curated problems appear)."""
    examples = gateway.StreamResults(services_pb2.StreamResultsRequest(batch_id=batch_id), timeout=60)
    return {e.messages[-2].content: e.messages[-1].content for e in examples}


def test_a_curator_killed_while_it_holds_candidates_restarts_and_decides_as_a_fault_free_run(stack):
    """The batch asks for refinement, and the refiner is down: the curator holds each solved problem's samples,
    waiting for the refined trace. It is SIGKILLed holding them; restarted, it decides what a fault-free run
    of the same problems decides."""
    gateway = _stub(stack, "gateway", services_pb2_grpc.GatewayStub)
    sampling = records_pb2.SamplingSpec(samples_per_problem=2, max_new_tokens=16, seed=7)

    def submit(tag: str) -> str:
        return gateway.SubmitBatch(services_pb2.SubmitBatchRequest(
            problems=_problems(3, tag), sampling=sampling, oracle_modes=[records_pb2.ORACLE_MODE_REFINE])).batch_id

    fault_free = submit("-fault-free")
    assert _complete(_wait_for(stack, gateway, fault_free, _complete, timeout_s=120))

    stack.kill("refiner")
    faulty = submit("-faulty")
    status = _wait_for(stack, gateway, faulty, lambda s: s.samples_scored == 6 and s.problems_decided == 2, 120)
    # Both unsolved problems are decided; 1 + 1 is held: its 2 correct samples wait for their refinements.
    assert (status.samples_scored, status.problems_decided, status.curated) == (6, 2, 0)
    stack.kill("curator")
    stack.restart("refiner")
    stack.restart("curator")
    status = _wait_for(stack, gateway, faulty, _complete, timeout_s=120)
    assert status.state == records_pb2.BATCH_STATE_COMPLETE and status.problems_decided == 3
    assert _outcome(gateway, faulty) == _outcome(gateway, fault_free) == {"Calculate 1 + 1.": "1 + 1 = 2\nFinal answer: 2"}


def test_a_restarted_gateway_folds_the_topics_back_to_the_same_counts(stack):
    gateway = _stub(stack, "gateway", services_pb2_grpc.GatewayStub)
    batch_id = gateway.SubmitBatch(services_pb2.SubmitBatchRequest(
        problems=_problems(2, "-restart"), sampling=records_pb2.SamplingSpec(samples_per_problem=2,
                                                                              max_new_tokens=16))).batch_id
    before = _wait_for(stack, gateway, batch_id, _complete, timeout_s=120)
    stack.kill("gateway")
    stack.restart("gateway")
    gateway = _stub(stack, "gateway", services_pb2_grpc.GatewayStub)
    after = _wait_for(stack, gateway, batch_id, lambda s: s.curated == before.curated and _complete(s), 60)
    for field in ("state", "problems", "samples_scored", "samples_correct", "problems_decided", "curated"):
        assert getattr(after, field) == getattr(before, field), field
    assert list(after.summaries) == list(before.summaries)


def test_every_service_serves_prometheus_metrics(stack):
    service = stack.state.services["reward_scorer"]
    with urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    assert 'learnerfit_stage_records_in_total{stage="reward_scorer"}' in text
    assert 'learnerfit_grpc_calls_total{code="OK",method="/learnerfit.v1.RewardScorer/ScoreTrajectories"}' in text


def test_a_problem_whose_records_are_dead_lettered_settles_its_batch_as_failed_with_the_reason(stack, capsys):
    gateway = _stub(stack, "gateway", services_pb2_grpc.GatewayStub)
    problems = _problems(3, "-dead")
    problems[2].question = "Calculate 2 + 1. " + "Show every step of the work clearly. " * 3  # over the scorer's limit
    assert len(problems[2].question) > LONGEST_SCORED_QUESTION
    batch_id = gateway.SubmitBatch(services_pb2.SubmitBatchRequest(
        problems=problems, sampling=records_pb2.SamplingSpec(samples_per_problem=2, max_new_tokens=16))).batch_id

    status = _wait_for(stack, gateway, batch_id, _complete, timeout_s=120)

    assert status.state == records_pb2.BATCH_STATE_COMPLETE  # not left RUNNING for the lost samples
    assert (status.problems, status.problems_decided, status.problems_failed, status.curated) == (3, 2, 1, 1)
    [failure] = status.failures
    assert failure.stage == "reward_scorer"
    assert "max_question_chars" in failure.reason and "trajectory.problem.question" in failure.reason
    assert len(list(gateway.StreamResults(services_pb2.StreamResultsRequest(batch_id=batch_id), timeout=30))) == 1

    # The CLI lists the batch's dead letters and replays one onto the topic it came from.
    from learnerfit.cli import main

    assert main(["--dir", str(stack.directory), "dead-letters", "--batch", batch_id]) == 0
    listed = capsys.readouterr()
    assert "2 dead letters" in listed.err and "max_question_chars" in listed.out
    bus = Bus(stack.state.bootstrap_servers, client_id="e2e-dead-letters")
    try:
        from learnerfit.cli.dead_letters import dead_letters

        letters = dead_letters(bus, batch_id)
        assert len(letters) == 2 and {d.problem_id for d in letters} == {failure.problem_id}
        assert main(["--dir", str(stack.directory), "dead-letters", "--replay", letters[0].id]) == 0
        # Still too long: the replayed record is read as new work (not dropped as a duplicate) and fails again.
        deadline = time.monotonic() + 60
        while len(dead_letters(bus, batch_id)) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        again = dead_letters(bus, batch_id)
        assert len(again) == 3 and again[-1].record_id == letters[0].record_id
    finally:
        bus.close()
