"""One Oracle call path for both Oracle services: prompt -> Oracle -> guardrails -> verified, lineage-stamped trajectory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from learnerfit.v1 import records_pb2
from services.backends.base import Completion, Conversation, SamplingParams, TextGenerator
from services.common.metrics import ORACLE_OUTPUTS, ORACLE_REJECTIONS
from services.oracle.guardrails import GuardrailSettings, text_rejection
from services.oracle.lineage import derived_trajectory
from services.oracle.selection import REJECTED
from services.reward_scorer.answers import AnswerChecker, extract_final_answer


@dataclass
class Draft:
    """What one Oracle output should become."""

    problem: records_pb2.Problem
    origin: int
    conversation: Conversation
    prompt_ids: list[str]
    parent: records_pb2.Trajectory | None = None
    keeps_parent: bool = False  # rewrite/repair: the output must keep much of the parent's text
    metadata: dict[str, str] = field(default_factory=dict)
    # Set when the text is already written (repair: the learner finished it); no Oracle call then.
    completion: Completion | None = None
    # Set when an earlier step already failed (repair: no wrong step named); the output is rejected with it.
    rejection: str | None = None


def is_rejected(trajectory: records_pb2.Trajectory) -> bool:
    return REJECTED in trajectory.metadata


class OracleWriter:
    def __init__(self, service: str, oracle: TextGenerator, checker: AnswerChecker, params: SamplingParams,
                 min_overlap: float):
        self.service = service
        self.oracle = oracle
        self.checker = checker
        self.params = params
        self.min_overlap = min_overlap

    def complete(self, conversations: Sequence[Conversation]) -> list[Completion]:
        """One Oracle completion per conversation, in one back-end call."""
        if not conversations:
            return []
        return [samples[0] for samples in self.oracle.generate(conversations, self.params)]

    def write(self, drafts: Sequence[Draft]) -> list[records_pb2.Trajectory]:
        """Accepted and rejected outputs alike; a rejected one carries its reason under REJECTED."""
        pending = [i for i, d in enumerate(drafts) if d.completion is None]
        completions = {i: d.completion for i, d in enumerate(drafts) if d.completion is not None}
        completions.update(zip(pending, self.complete([drafts[i].conversation for i in pending]), strict=True))
        outputs, reasons, to_verify = [], [], []
        for i, draft in enumerate(drafts):
            completion = completions[i]
            outputs.append(derived_trajectory(
                draft.problem, draft.origin, self.oracle.model_name, completion.text, draft.prompt_ids,
                parent=draft.parent, completion_tokens=completion.token_count, extra=draft.metadata))
            guard = GuardrailSettings(min_overlap=self.min_overlap, keeps_parent=draft.keeps_parent)
            reason = draft.rejection or text_rejection(completion, draft.parent.text if draft.parent else None, guard)
            reasons.append(reason)
            if reason is None:
                to_verify.append(i)
        answers = {i: extract_final_answer(outputs[i].text)[0] for i in to_verify}
        checkable = [i for i in to_verify if answers[i] is not None]
        verdicts = self.checker.check([(answers[i], drafts[i].problem.reference_answer) for i in checkable])
        for i in to_verify:
            if answers[i] is None:
                reasons[i] = "answer_not_verified: no final answer"
        for i, (verdict, detail) in zip(checkable, verdicts, strict=True):
            outputs[i].final_answer = answers[i]
            if verdict != records_pb2.VERDICT_CORRECT:
                reasons[i] = f"answer_not_verified: {detail}"
        for output, reason in zip(outputs, reasons, strict=True):
            origin = records_pb2.Origin.Name(output.origin).removeprefix("ORIGIN_").lower()
            if reason is None:
                ORACLE_OUTPUTS.labels(self.service, origin).inc()
            else:
                output.metadata[REJECTED] = reason
                ORACLE_REJECTIONS.labels(self.service, origin, reason.split(":")[0]).inc()
        return outputs
