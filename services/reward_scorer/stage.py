"""The reward scorer's logic: each trajectory's final answer extracted and verified against the reference."""

from __future__ import annotations

from collections.abc import Sequence

from learnerfit.v1 import records_pb2
from services.reward_scorer.answers import AnswerChecker, extract_final_answer


class RewardScorer:
    """Scores a batch of trajectories; one call to the answer-check worker serves the whole batch."""

    def __init__(self, checker: AnswerChecker):
        self.checker = checker

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
        return [[t] for t in scored]
