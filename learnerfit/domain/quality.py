"""The reward scorer's logic: quality of each trajectory.

Three measurements: the final answer extracted and verified against the reference
(math-verify, in a worker process), an outcome reward model's score of the whole
(question, solution), batched in one call per stage batch, and the share of the
trace's arithmetic steps that hold (a process check the rule-based teacher's
parser makes exactly, where the reward model is fooled by layout).
"""

from __future__ import annotations

from collections.abc import Sequence

from learnerfit.domain.answers import AnswerCheck, extract_final_answer
from learnerfit.domain.inference import RewardModel
from learnerfit.domain.oracle.arithmetic import checked_steps
from learnerfit.domain.records import copied
from learnerfit.v1 import records_pb2


class RewardScorer:
    """Scores a batch of trajectories; one answer-check call and one reward-model call serve the whole batch."""

    def __init__(self, checker: AnswerCheck, reward_model: RewardModel | None = None):
        self.checker = checker
        self.reward_model = reward_model

    def __call__(self, trajectories: Sequence[records_pb2.Trajectory]) -> list[records_pb2.Trajectory]:
        scored = [copied(t) for t in trajectories]
        to_check: list[tuple[records_pb2.Trajectory, str]] = []
        for trajectory in scored:
            answer, how = extract_final_answer(trajectory.text)
            if answer is None:
                trajectory.scores.verdict = records_pb2.VERDICT_UNPARSED
                trajectory.scores.verdict_detail = how
            else:
                trajectory.final_answer = answer
                to_check.append((trajectory, answer))
        for trajectory in scored:  # the process check, beside the outcome's: do the steps hold?
            holding, checked = checked_steps(trajectory.text)
            trajectory.scores.ClearField("step_accuracy")
            trajectory.scores.steps_checked = checked
            if checked:
                trajectory.scores.step_accuracy = holding / checked
        verdicts = self.checker.check([(answer, t.problem.reference_answer) for t, answer in to_check])
        for (trajectory, _), (verdict, detail) in zip(to_check, verdicts, strict=True):
            trajectory.scores.verdict = verdict
            trajectory.scores.verdict_detail = detail
        if self.reward_model is not None and scored:
            rewards = self.reward_model.rewards([t.problem.question for t in scored], [t.text for t in scored])
            for trajectory, reward in zip(scored, rewards, strict=True):
                trajectory.scores.reward = reward
                trajectory.scores.reward_model = self.reward_model.model_name
        return scored
