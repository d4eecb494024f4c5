"""One Oracle call path for both Oracle services: task -> budget -> Oracle -> guardrails -> a verified,
lineage-stamped trajectory that records what it cost (spend.py)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from learnerfit.domain.answers import AnswerCheck, extract_final_answer
from learnerfit.domain.inference import Completion, TokenUsage
from learnerfit.domain.oracle.guardrails import rejection, text_rejection
from learnerfit.domain.oracle.lineage import derived_trajectory, output_id
from learnerfit.domain.oracle.spend import BUDGET_EXHAUSTED, Price, SpendLedger, usage_record
from learnerfit.domain.oracle.tasks import Oracle, OracleTask
from learnerfit.domain.records import mode_name, origin_name
from learnerfit.v1 import records_pb2

Reply = TypeVar("Reply")  # what the Oracle answers a task: a written solution, or a located step (repair)
KEEP_WRITTEN = 4096  # outputs an Oracle service keeps to give again rather than pay for twice

# Told of each output: its origin's name, the guardrail that rejected it (None: accepted), and as keywords its
# model, mode, tokens by kind and cost (None: no price). A service counts them (metrics).
OutcomeSink = Callable[..., None]


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
    # What the Oracle requests for it took, where they were made before the writer (repair's step fix).
    usage: TokenUsage | None = None


class OracleWriter:
    def __init__(self, oracle: Oracle, checker: AnswerCheck, min_overlap: float,
                 outcomes: OutcomeSink = lambda origin, rejected_by, **spent: None, price: Price | None = None,
                 spend: SpendLedger | None = None):
        self.outcomes = outcomes
        self.oracle = oracle
        self.checker = checker
        self.min_overlap = min_overlap
        self.price = price
        self.spend = spend or SpendLedger(oracle.model_name, priced=price is not None)
        # Outputs written lately, by id: a batch asked again (its publish failed and the stage retries it, or the
        # same RPC) gets what was paid for, not a second request. Bounded: the newest KEEP_WRITTEN.
        self._written: OrderedDict[str, records_pb2.Trajectory] = OrderedDict()
        self._lock = threading.Lock()

    def output_id(self, draft: Draft) -> str:
        return output_id(draft.task.problem, draft.origin, self.oracle.model_name,
                         self.oracle.prompt_ids(draft.task.mode), draft.parent)

    def already_written(self, draft: Draft) -> bool:
        """The output is on the topics already (an input replayed after its outputs were published): asking again
        would pay for it twice."""
        return self.spend.published(draft.task.problem.batch_id, self.output_id(draft))

    def unwritten(self, drafts: Sequence[Draft]) -> list[Draft]:
        """The stream's drafts whose outputs are not on the topics yet (an input replayed after a crash that came
        after its outputs were published: asking again would pay for them twice)."""
        return [d for d in drafts if not self.already_written(d)]

    def refuse_over_budget(self, draft: Draft) -> bool:
        """Rejects the draft, unasked, when its batch has spent its Oracle budget."""
        reason = self.spend.refusal(draft.task.problem)
        if reason is not None:
            draft.completion, draft.rejection = Completion("", 0, False), rejection(BUDGET_EXHAUSTED, reason)
        return reason is not None

    def ask(self, drafts: Sequence[Draft], call: Callable[[list[OracleTask]], list[Reply]],
            usage_of: Callable[[Reply], TokenUsage | None]) -> dict[int, Reply]:
        """Asks the Oracle (`call`) for the drafts' tasks in rounds, each batch's drafts as many at once as its budget
        covers (all of them without one), each checked against it just before it is asked: refused unasked once the
        batch has spent it. Returns the replies by draft index; what each took is charged as soon as it comes."""
        replies: dict[int, Reply] = {}
        with self._lock:  # those written lately are paid for already
            waiting = [i for i, draft in enumerate(drafts) if self.output_id(draft) not in self._written]
        while waiting:
            now, later, room = [], [], {}
            for i in waiting:
                if self.refuse_over_budget(drafts[i]):
                    continue
                problem = drafts[i].task.problem
                room.setdefault(problem.batch_id, self.spend.affordable(problem))
                (now if room[problem.batch_id] > 0 else later).append(i)
                room[problem.batch_id] -= 1
            for i, reply in zip(now, call([drafts[i].task for i in now]) if now else [], strict=True):
                replies[i] = reply
                self.spend.charge(drafts[i].task.problem.batch_id, self.output_id(drafts[i]),
                                  usage_record(usage_of(reply), self.price))
            waiting = later
        return replies

    def write(self, drafts: Sequence[Draft]) -> list[records_pb2.Trajectory]:
        """Accepted and rejected outputs alike; a rejected one carries its `rejection`. An output written lately is
        given again as it was, not asked for again."""
        recalled = [self._recalled(d) for d in drafts]
        fresh = iter(self._write([d for d, known in zip(drafts, recalled, strict=True) if known is None]))
        return [next(fresh) if known is None else known for known in recalled]

    def _recalled(self, draft: Draft) -> records_pb2.Trajectory | None:
        with self._lock:
            known = self._written.get(self.output_id(draft))
            if known is None:
                return None
            output = records_pb2.Trajectory()
            output.CopyFrom(known)
            return output

    def _remember(self, output: records_pb2.Trajectory) -> None:
        kept = records_pb2.Trajectory()
        kept.CopyFrom(output)
        with self._lock:
            self._written[output.id] = kept
            self._written.move_to_end(output.id)
            while len(self._written) > KEEP_WRITTEN:
                self._written.popitem(last=False)

    def _write(self, drafts: Sequence[Draft]) -> list[records_pb2.Trajectory]:
        pending = [d for d in drafts if d.completion is None]
        for draft, reply in ((pending[k], r) for k, r in self.ask(pending, self.oracle.write,
                                                                   lambda r: r.completion.usage).items()):
            draft.completion, draft.usage = reply.completion, reply.completion.usage
            if reply.unable is not None:
                draft.rejection = rejection("oracle_unable", reply.unable)
        outputs, reasons, to_verify = [], [], []
        for i, draft in enumerate(drafts):
            completion, task = draft.completion, draft.task
            outputs.append(derived_trajectory(
                task.problem, draft.origin, task.mode, self.oracle.model_name, completion.text,
                self.oracle.prompt_ids(task.mode), parent=draft.parent, completion_tokens=completion.token_count,
                notes=draft.notes, usage=usage_record(draft.usage, self.price)))
            self.spend.note(outputs[-1])  # paid for: counted against the batch's budget from now on
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
            usage = output.oracle_usage
            self.outcomes(origin_name(output.origin), reason.guardrail if reason is not None else None,
                          model=output.model, mode=mode_name(output.oracle_mode),
                          tokens={"prompt": usage.prompt_tokens, "completion": usage.completion_tokens,
                                  "cached": usage.cached_tokens},
                          cost_usd=usage.cost_usd if usage.HasField("cost_usd") else None)
            self._remember(output)
        return outputs
