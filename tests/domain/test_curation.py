"""The curator's rejection-sampling policy and its per-problem bookkeeping."""

from __future__ import annotations

import math

import pytest

from learnerfit.domain.curation.curator import CurationSettings, Curator, decide
from learnerfit.errors import InvalidInput
from learnerfit.v1 import records_pb2

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
    curator = Curator(CurationSettings(problem_wait_s=60))
    problem = _problem(2)
    assert curator([_sample(problem, 0, WRONG)]) == []
    assert curator.held_ids() == {"p1-t0"}
    [decision, example] = curator([_sample(problem, 1, CORRECT)])
    assert decision.curated and example.trajectory_id == "p1-t1"
    assert curator.held_ids() == set()
    # A replayed sample of a decided problem changes nothing.
    assert curator([_sample(problem, 1, CORRECT)]) == []


def test_a_redelivered_sample_is_not_counted_twice_towards_completion():
    curator = Curator(CurationSettings(problem_wait_s=60))
    problem = _problem(2)
    curator([_sample(problem, 0, WRONG)])
    assert curator([_sample(problem, 0, WRONG)]) == []
    assert curator.held_ids() == {"p1-t0"}


def test_a_problem_whose_wait_ran_out_is_decided_with_the_samples_it_has():
    now = [100.0]
    curator = Curator(CurationSettings(problem_wait_s=30), clock=lambda: now[0])
    problem = _problem(4)
    curator([_sample(problem, 0, CORRECT)])
    assert curator.tick() == []
    now[0] += 31
    [decision, example] = curator.tick()
    assert decision.timed_out and decision.curated and decision.candidates == 1
    assert example.trajectory_id == "p1-t0"
    assert curator.held_ids() == set()


def test_oracle_outputs_do_not_complete_a_problem_early():
    curator = Curator(CurationSettings(problem_wait_s=600))
    problem = records_pb2.Problem(id="p", batch_id="b", question="q", reference_answer="1",
                                  sampling=records_pb2.SamplingSpec(samples_per_problem=2))
    oracle = records_pb2.Trajectory(id="o", problem=problem, origin=records_pb2.ORIGIN_ORACLE_SYNTHESIZED,
                                    scores=records_pb2.Scores(verdict=records_pb2.VERDICT_CORRECT))
    learner = [records_pb2.Trajectory(id=f"l{i}", problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE,
                                      sample_index=i, scores=records_pb2.Scores(verdict=records_pb2.VERDICT_CORRECT))
               for i in range(2)]
    assert curator([oracle, learner[0]]) == []  # two candidates, but only one of the two learner samples
    [decision, example] = curator([learner[1]])
    assert decision.curated and example.origin == records_pb2.ORIGIN_LEARNER_SAMPLE


def _candidate(problem, tid, origin, verdict=records_pb2.VERDICT_CORRECT, text=None, reward=None, ppl=None, index=0,
               rejection=None):
    scores = records_pb2.Scores(verdict=verdict)
    if reward is not None:
        scores.reward = reward
    if ppl is not None:
        scores.ppl = ppl
    trajectory = records_pb2.Trajectory(id=tid, problem=problem, origin=origin, text=text or f"text of {tid}",
                                        sample_index=index, scores=scores)
    if rejection is not None:
        trajectory.rejection.CopyFrom(rejection)
    return trajectory


def _oracle_problem(policy, modes=(records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_SYNTHESIZE)):
    return records_pb2.Problem(id="p", batch_id="b", question="q", reference_answer="1", curation_policy=policy,
                               oracle_modes=list(modes), sampling=records_pb2.SamplingSpec(samples_per_problem=2))


def test_a_problem_waits_for_every_oracle_output_the_batch_asked_for_rejected_ones_included():
    curator = Curator(CurationSettings(problem_wait_s=600))
    problem = _oracle_problem("oracle_synthesized")
    learner = [_candidate(problem, "l0", records_pb2.ORIGIN_LEARNER_SAMPLE, index=0),
               _candidate(problem, "l1", records_pb2.ORIGIN_LEARNER_SAMPLE, records_pb2.VERDICT_INCORRECT, index=1)]
    # 1 correct learner sample -> 1 refine, plus 1 synthesize: two Oracle outputs expected.
    assert curator(learner) == []
    rejected = _candidate(problem, "r", records_pb2.ORIGIN_ORACLE_REFINED, records_pb2.VERDICT_UNSPECIFIED,
                          rejection=records_pb2.Rejection(guardrail="meta_text", detail="'as an AI'"))
    assert curator([rejected]) == []
    assert curator.held_ids() == {"l0", "l1", "r"}  # the rejected output is held too: a restart recounts it
    [decision, example] = curator([_candidate(problem, "s", records_pb2.ORIGIN_ORACLE_SYNTHESIZED)])
    assert example.trajectory_id == "s" and example.origin == records_pb2.ORIGIN_ORACLE_SYNTHESIZED
    assert decision.candidates == 3 and "correct oracle_synthesized trace" in decision.reason


@pytest.mark.parametrize(("policy", "chosen"), [
    ("rejection_sampling", "l0"), ("oracle_refined", "r"), ("oracle_synthesized", "s"), ("style_aligned", "a")])
def test_each_origin_policy_takes_its_origin(policy, chosen):
    problem = _oracle_problem(policy)
    candidates = [_candidate(problem, "l0", records_pb2.ORIGIN_LEARNER_SAMPLE),
                  _candidate(problem, "r", records_pb2.ORIGIN_ORACLE_REFINED),
                  _candidate(problem, "s", records_pb2.ORIGIN_ORACLE_SYNTHESIZED),
                  _candidate(problem, "a", records_pb2.ORIGIN_STYLE_ALIGNED)]
    decision, example = decide(problem, candidates, policy)
    assert example.trajectory_id == chosen and decision.chosen_trajectory_id == chosen


def test_utility_balances_reward_against_the_learners_perplexity_under_a_ceiling():
    problem = _oracle_problem("utility")
    candidates = [
        _candidate(problem, "own", records_pb2.ORIGIN_LEARNER_SAMPLE, reward=1.0, ppl=1.2),      # 1.0 - ln 1.2 = 0.82
        _candidate(problem, "aligned", records_pb2.ORIGIN_STYLE_ALIGNED, reward=1.5, ppl=1.4),   # 1.5 - ln 1.4 = 1.16
        _candidate(problem, "far", records_pb2.ORIGIN_ORACLE_SYNTHESIZED, reward=3.0, ppl=4.0),  # above the ceiling
        _candidate(problem, "wrong", records_pb2.ORIGIN_ORACLE_REFINED, records_pb2.VERDICT_INCORRECT, reward=9.0,
                   ppl=1.0),
    ]
    context = CurationSettings(utility_weight=1.0, ppl_ceiling_factor=1.5).policy_context(1.3)  # ceiling 1.95
    _, example = decide(problem, candidates, "utility", context=context)
    assert example.trajectory_id == "aligned"
    assert example.utility == pytest.approx(1.5 - math.log(1.4))
    assert "ceiling 1.95" in example.reason
    # Without a ceiling the far, high-reward Oracle text wins: 3.0 - ln 4 = 1.61.
    _, example = decide(problem, candidates, "utility", context=CurationSettings().policy_context())
    assert example.trajectory_id == "far"
    # A heavier weight on compatibility prefers the learner's own trace: 1.0 - 5 ln 1.2 > 1.5 - 5 ln 1.4.
    _, example = decide(problem, candidates, "utility",
                        context=CurationSettings(utility_weight=5.0).policy_context(1.3))
    assert example.trajectory_id == "own"


def test_utility_can_weigh_the_rank_surprisal_ratio_instead_of_perplexity():
    problem = _oracle_problem("utility")
    candidates = [_candidate(problem, "own", records_pb2.ORIGIN_LEARNER_SAMPLE, reward=1.0, ppl=1.2),
                  _candidate(problem, "aligned", records_pb2.ORIGIN_STYLE_ALIGNED, reward=1.0, ppl=1.4)]
    candidates[0].scores.rsr, candidates[1].scores.rsr = 6.0, 2.0  # the costs disagree: ppl favours "own"
    _, by_ppl = decide(problem, candidates, "utility", context=CurationSettings().policy_context())
    _, by_rsr = decide(problem, candidates, "utility", context=CurationSettings(utility_cost="rsr").policy_context())
    assert (by_ppl.trajectory_id, by_rsr.trajectory_id) == ("own", "aligned")
    assert by_rsr.utility == pytest.approx(1.0 - math.log(2.0)) and "rsr 2.00" in by_rsr.reason
    candidates[1].scores.ClearField("rsr")  # a candidate without the chosen cost cannot be weighed
    _, without = decide(problem, candidates, "utility", context=CurationSettings(utility_cost="rsr").policy_context())
    assert without.trajectory_id == "own"


def test_near_identical_solutions_are_collapsed_before_choosing():
    problem = _oracle_problem("oracle_refined")
    candidates = [_candidate(problem, "r1", records_pb2.ORIGIN_ORACLE_REFINED, text="3 + 4 = 7\nFinal answer: 7"),
                  _candidate(problem, "r2", records_pb2.ORIGIN_ORACLE_REFINED, text="3 + 4 = 7.\n\nfinal  answer: 7"),
                  _candidate(problem, "r3", records_pb2.ORIGIN_ORACLE_REFINED, text="3 + 4 = 7\nFinal answer: 7!")]
    decision, example = decide(problem, candidates, "oracle_refined")
    assert example.trajectory_id == "r1"
    assert decision.reason == "correct oracle_refined trace (1 available); 2 near-duplicate(s) dropped"


def test_the_grpc_path_decides_with_the_same_policy_context_as_the_stream():
    problem = _oracle_problem("utility")
    candidates = [
        _candidate(problem, "own", records_pb2.ORIGIN_LEARNER_SAMPLE, reward=1.0, ppl=1.2),
        _candidate(problem, "aligned", records_pb2.ORIGIN_STYLE_ALIGNED, reward=1.5, ppl=1.4),
        _candidate(problem, "far", records_pb2.ORIGIN_ORACLE_SYNTHESIZED, reward=3.0, ppl=4.0),
    ]
    # The ceiling comes from the learner samples given (median 1.2 -> 1.8), the weight from the settings.
    [(_, chosen)] = Curator(CurationSettings(utility_weight=1.0)).curate(candidates)
    assert chosen.trajectory_id == "aligned" and "ceiling 1.80" in chosen.reason
    [(_, chosen)] = Curator(CurationSettings(utility_weight=5.0)).curate(candidates)
    assert chosen.trajectory_id == "own"  # 1.0 - 5 ln 1.2 = 0.09 beats 1.5 - 5 ln 1.4 = -0.18


def test_an_unknown_policy_in_a_curate_request_names_the_field():
    with pytest.raises(InvalidInput, match=r"^policy: unknown policy 'best'"):
        Curator(CurationSettings()).curate([], policy="best")


def test_curation_can_require_the_steps_to_hold_not_only_the_final_answer():
    """The published study kept "4 - 1 = 3 / 3 - 1 = 3 / Final answer: 3" (reward 2.16): right answer, false step.
    With min_step_accuracy the reward scorer's exact step check decides too."""
    from learnerfit.domain.quality import RewardScorer

    class Exact:  # the answer check, as the reward scorer's worker makes it (string equality suffices here)
        def check(self, pairs):
            return [(CORRECT if a == r else WRONG, "") for a, r in pairs]

    problem = records_pb2.Problem(id="p1", batch_id="b1", question="Calculate 4 - 1 - 1.", reference_answer="2")
    texts = {"lucky": "4 - 1 = 3\n3 - 1 = 3\nFinal answer: 2", "sound": "4 - 1 = 3\n3 - 1 = 2\nFinal answer: 2",
             "bare": "Final answer: 2"}
    candidates = RewardScorer(Exact())([records_pb2.Trajectory(
        id=name, problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE, sample_index=i, text=text)
        for i, (name, text) in enumerate(texts.items())])
    steps = {t.id: (t.scores.step_accuracy if t.scores.HasField("step_accuracy") else None, t.scores.steps_checked)
             for t in candidates}
    assert steps == {"lucky": (0.5, 2), "sound": (1.0, 2), "bare": (None, 0)}
    assert all(t.scores.verdict == CORRECT for t in candidates)
    _, anyway = decide(problem, candidates, "rejection_sampling", context=CurationSettings().policy_context())
    assert anyway.trajectory_id == "lucky"  # off by default: the first correct sample
    required = CurationSettings(min_step_accuracy=1.0).policy_context()
    _, sound = decide(problem, candidates, "rejection_sampling", context=required)
    assert sound.trajectory_id == "sound"
    decision, none = decide(problem, [candidates[0], candidates[2]], "rejection_sampling", context=required)
    assert none is None and "whose checked steps hold at least 1.00" in decision.reason


def test_a_utility_decision_depends_only_on_its_problems_candidates():
    """Two replicas, or one before and after a crash, see different other problems of the batch: the decision on
    this one must not move with them (its perplexity ceiling is its own learner samples' median)."""
    problem = _oracle_problem("utility", modes=(records_pb2.ORACLE_MODE_SYNTHESIZE,))
    other = records_pb2.Problem(id="p-other", batch_id="b", question="q2", reference_answer="2",
                                curation_policy="utility", sampling=records_pb2.SamplingSpec(samples_per_problem=9))
    mine = [_candidate(problem, "l0", records_pb2.ORIGIN_LEARNER_SAMPLE, reward=1.0, ppl=1.2, index=0),
            _candidate(problem, "l1", records_pb2.ORIGIN_LEARNER_SAMPLE, reward=0.5, ppl=1.3, index=1),
            _candidate(problem, "far", records_pb2.ORIGIN_ORACLE_SYNTHESIZED, reward=3.0, ppl=2.5)]
    # The other problem's learner samples, far more perplexing: under a batch-wide median they lift the ceiling
    # over "far" (1.5 x 4.0), under the problem's own (1.5 x 1.3 = 1.95) "far" stays out.
    noisy = [_candidate(other, f"o{i}", records_pb2.ORIGIN_LEARNER_SAMPLE, reward=0.1, ppl=4.0, index=i)
             for i in range(5)]
    alone, after_others = Curator(CurationSettings()), Curator(CurationSettings())
    decided_alone = alone(mine)
    decided_after = after_others(noisy + mine)
    assert [m for m in decided_alone if isinstance(m, records_pb2.CuratedExample)] == \
        [m for m in decided_after if isinstance(m, records_pb2.CuratedExample)]
    [example] = [m for m in decided_alone if isinstance(m, records_pb2.CuratedExample)]
    assert example.trajectory_id == "l0" and "ceiling 1.95" in example.reason
