"""The curator's rejection-sampling policy and its per-problem bookkeeping."""

from __future__ import annotations

from learnerfit.v1 import records_pb2
from services.curator.stage import Curator, decide

CORRECT, WRONG = records_pb2.VERDICT_CORRECT, records_pb2.VERDICT_INCORRECT


def _problem(n: int = 3, pid: str = "p1") -> records_pb2.Problem:
    return records_pb2.Problem(id=pid, batch_id="b1", question="Calculate 2 + 2.", reference_answer="4",
                               sampling=records_pb2.SamplingSpec(samples_per_problem=n),
                               curation_policy="rejection_sampling")


def _sample(problem, index: int, verdict: int, text: str | None = None) -> records_pb2.Trajectory:
    return records_pb2.Trajectory(
        id=f"{problem.id}-t{index}", problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE, sample_index=index,
        text=text or f"sample {index}\nFinal answer: {4 if verdict == CORRECT else 5}", model="m", checkpoint="base",
        scores=records_pb2.Scores(verdict=verdict))


def test_rejection_sampling_keeps_the_first_correct_learner_sample_as_a_chat_example():
    problem = _problem()
    decision, example = decide(problem, [_sample(problem, 2, CORRECT), _sample(problem, 0, WRONG),
                                         _sample(problem, 1, CORRECT)], "rejection_sampling")
    assert decision.curated and decision.chosen_trajectory_id == "p1-t1"
    assert (decision.candidates, decision.correct_candidates) == (3, 2)
    assert example.trajectory_id == "p1-t1"
    assert example.messages[-1].role == "assistant"
    assert example.messages[-1].content == "sample 1\nFinal answer: 4"
    assert example.messages[-2].content == "Calculate 2 + 2."
    assert "2 of 3 correct" in example.reason


def test_a_problem_without_a_correct_sample_gets_a_decision_but_no_example():
    problem = _problem(2)
    decision, example = decide(problem, [_sample(problem, 0, WRONG), _sample(problem, 1, WRONG)],
                               "rejection_sampling")
    assert not decision.curated
    assert example is None
    assert "no correct" in decision.reason


def test_the_curator_decides_once_every_sample_arrived_and_holds_them_until_then():
    curator = Curator(wait_s=60)
    problem = _problem(2)
    assert curator([_sample(problem, 0, WRONG)]) == [[]]
    assert curator.held_ids() == {"p1-t0"}
    [[decision, example]] = curator([_sample(problem, 1, CORRECT)])
    assert decision.curated and example.trajectory_id == "p1-t1"
    assert curator.held_ids() == set()
    # A replayed sample of a decided problem changes nothing.
    assert curator([_sample(problem, 1, CORRECT)]) == [[]]


def test_a_redelivered_sample_is_not_counted_twice_towards_completion():
    curator = Curator(wait_s=60)
    problem = _problem(2)
    curator([_sample(problem, 0, WRONG)])
    assert curator([_sample(problem, 0, WRONG)]) == [[]]
    assert curator.held_ids() == {"p1-t0"}


def test_a_problem_whose_wait_ran_out_is_decided_with_the_samples_it_has():
    now = [100.0]
    curator = Curator(wait_s=30, clock=lambda: now[0])
    problem = _problem(4)
    curator([_sample(problem, 0, CORRECT)])
    assert curator.tick() == []
    now[0] += 31
    [decision, example] = curator.tick()
    assert decision.timed_out and decision.curated and decision.candidates == 1
    assert example.trajectory_id == "p1-t0"
    assert curator.held_ids() == set()


def test_oracle_outputs_do_not_complete_a_problem_early():
    curator = Curator(wait_s=600)
    problem = records_pb2.Problem(id="p", batch_id="b", question="q", reference_answer="1",
                                  sampling=records_pb2.SamplingSpec(samples_per_problem=2))
    oracle = records_pb2.Trajectory(id="o", problem=problem, origin=records_pb2.ORIGIN_ORACLE_SYNTHESIZED,
                                    scores=records_pb2.Scores(verdict=records_pb2.VERDICT_CORRECT))
    learner = [records_pb2.Trajectory(id=f"l{i}", problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE,
                                      sample_index=i, scores=records_pb2.Scores(verdict=records_pb2.VERDICT_CORRECT))
               for i in range(2)]
    assert curator([oracle, learner[0]]) == [[], []]  # two candidates, but only one of the two learner samples
    [[decision, example]] = curator([learner[1]])
    assert decision.curated and example.origin == records_pb2.ORIGIN_LEARNER_SAMPLE
