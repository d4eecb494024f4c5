"""The reward scorer's logic: quality of each trajectory.

Two measurements: the final answer extracted and verified against the reference
(math-verify, in a worker process), and an outcome reward model's score of the
whole (question, solution), batched in one call per stage batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from learnerfit.v1 import records_pb2
from services.backends.base import RewardModel
from services.reward_scorer.answers import AnswerChecker, extract_final_answer


class RewardScorer:
    """Scores a batch of trajectories; one answer-check call and one reward-model call serve the whole batch."""

    def __init__(self, checker: AnswerChecker, reward_model: RewardModel | None = None):
        self.checker = checker
        self.reward_model = reward_model

    def __call__(self, trajectories: Sequence[records_pb2.Trajectory]) -> list[list[records_pb2.Trajectory]]:
        scored = []
        to_check: list[tuple[int, str, str]] = []
        for i, trajectory in enumerate(trajectories):
            copy = records_pb2.Trajectory()
            copy.CopyFrom(trajectory)
            answer, how = extract_final_answer(trajectory.text)
            if answer is None:
                copy.scores.verdict = records_pb2.VERDICT_UNPARSED
                copy.scores.verdict_detail = how
            else:
                copy.final_answer = answer
                to_check.append((i, answer, trajectory.problem.reference_answer))
            scored.append(copy)
        verdicts = self.checker.check([(answer, reference) for _, answer, reference in to_check])
        for (i, _, _), (verdict, detail) in zip(to_check, verdicts, strict=True):
            scored[i].scores.verdict = verdict
            scored[i].scores.verdict_detail = detail
        if self.reward_model is not None and scored:
            rewards = self.reward_model.rewards([t.problem.question for t in scored], [t.text for t in scored])
            for trajectory, reward in zip(scored, rewards, strict=True):
                trajectory.scores.reward = reward
                trajectory.scores.reward_model = self.reward_model.model_name
        return [[t] for t in scored]
