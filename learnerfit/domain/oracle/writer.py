"""One Oracle call path for both Oracle services: task -> Oracle -> guardrails -> a verified, lineage-stamped
trajectory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from learnerfit.domain.answers import AnswerCheck, extract_final_answer
from learnerfit.domain.inference import Completion
from learnerfit.domain.oracle.guardrails import rejection, text_rejection
from learnerfit.domain.oracle.lineage import derived_trajectory
from learnerfit.domain.oracle.tasks import Oracle, OracleTask
from learnerfit.domain.records import origin_name
from learnerfit.v1 import records_pb2

# Told of each output: its origin's name, and the guardrail that rejected it (None: accepted). A service counts them.
OutcomeSink = Callable[[str, "str | None"], None]


@dataclass
class Draft:
    """What one Oracle output should become."""

    task: OracleTask
    origin: int
    parent: records_pb2.Trajectory | None = None
    keeps_parent: bool = False  # rewrite/repair: the output must keep much of the parent's text
    notes: dict[str, str] = field(default_factory=dict)
    # Set when the text is already written (repair: the learner finished it); no Oracle call then.
    completion: Completion | None = None
    # Set when an earlier step already failed (repair: no wrong step named); the output is rejected with it.
    rejection: records_pb2.Rejection | None = None


class OracleWriter:
    def __init__(self, oracle: Oracle, checker: AnswerCheck, min_overlap: float,
                 outcomes: OutcomeSink = lambda origin, rejected_by: None):
        self.outcomes = outcomes
        self.oracle = oracle
        self.checker = checker
        self.min_overlap = min_overlap

    def write(self, drafts: Sequence[Draft]) -> list[records_pb2.Trajectory]:
        """Accepted and rejected outputs alike; a rejected one carries its `rejection`."""
        pending = [i for i, d in enumerate(drafts) if d.completion is None]
        replies = self.oracle.write([drafts[i].task for i in pending]) if pending else []
        for i, reply in zip(pending, replies, strict=True):
            drafts[i].completion = reply.completion
            if reply.unable is not None:
                drafts[i].rejection = rejection("oracle_unable", reply.unable)
        outputs, reasons, to_verify = [], [], []
        for i, draft in enumerate(drafts):
            completion, task = draft.completion, draft.task
            outputs.append(derived_trajectory(
                task.problem, draft.origin, task.mode, self.oracle.model_name, completion.text,
                self.oracle.prompt_ids(task.mode), parent=draft.parent, completion_tokens=completion.token_count,
                notes=draft.notes))
            reason = draft.rejection or text_rejection(completion, draft.parent.text if draft.parent else None,
                                                       self.min_overlap, draft.keeps_parent)
            reasons.append(reason)
            if reason is None:
                to_verify.append(i)
        answers = {i: extract_final_answer(outputs[i].text)[0] for i in to_verify}
        checkable = [i for i in to_verify if answers[i] is not None]
        verdicts = self.checker.check([(answers[i], drafts[i].task.problem.reference_answer) for i in checkable])
        for i in to_verify:
            if answers[i] is None:
                reasons[i] = rejection("answer_not_verified", "no final answer")
        for i, (verdict, detail) in zip(checkable, verdicts, strict=True):
            outputs[i].final_answer = answers[i]
            if verdict != records_pb2.VERDICT_CORRECT:
                reasons[i] = rejection("answer_not_verified", detail)
        for output, reason in zip(outputs, reasons, strict=True):
            if reason is not None:
                output.rejection.CopyFrom(reason)
            self.outcomes(origin_name(output.origin), reason.guardrail if reason is not None else None)
        return outputs
