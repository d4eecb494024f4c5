"""The curator's logic: gathers each problem's candidates, decides once all arrived or the wait ran out."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import Message

from learnerfit.v1 import records_pb2
from services.common.ids import stable_id
from services.common.prompts import training_messages
from services.curator.policies import DEFAULT_POLICY, POLICIES


def decide(
    problem: records_pb2.Problem,
    candidates: Sequence[records_pb2.Trajectory],
    policy: str,
    *,
    timed_out: bool = False,
) -> tuple[records_pb2.CurationDecision, records_pb2.CuratedExample | None]:
    """Applies `policy` to one problem's candidates: always a decision, and an example when one is chosen."""
    choice = POLICIES[policy](candidates)
    decision = records_pb2.CurationDecision(
        id=stable_id("decision", problem.batch_id, problem.id, policy),
        problem_id=problem.id,
        batch_id=problem.batch_id,
        policy=policy,
        candidates=len(candidates),
        correct_candidates=sum(t.scores.verdict == records_pb2.VERDICT_CORRECT for t in candidates),
        curated=choice.trajectory is not None,
        reason=choice.reason + (" (decided after the wait ran out)" if timed_out else ""),
        timed_out=timed_out,
    )
    if choice.trajectory is None:
        return decision, None
    chosen = choice.trajectory
    decision.chosen_trajectory_id = chosen.id
    example = records_pb2.CuratedExample(
        id=stable_id("example", chosen.id, policy),
        trajectory_id=chosen.id,
        problem_id=problem.id,
        batch_id=problem.batch_id,
        origin=chosen.origin,
        messages=training_messages(problem, chosen.text),
        scores=chosen.scores,
        policy=policy,
        reason=choice.reason,
        model=chosen.model,
        checkpoint=chosen.checkpoint,
    )
    return decision, example


@dataclass
class _Pending:
    problem: records_pb2.Problem
    first_seen: float
    candidates: dict[str, records_pb2.Trajectory] = field(default_factory=dict)


class Curator:
    """Stateful stage. Candidates wait here until their problem is decided; the runner commits no
    offset past a waiting candidate, so after a crash they are read again and nothing is lost."""

    def __init__(self, wait_s: float, remember: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.wait_s = wait_s
        self.remember = remember
        self.clock = clock
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._decided: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __call__(self, trajectories: Sequence[records_pb2.Trajectory]) -> list[list[Message]]:
        return [self._add(t) for t in trajectories]

    def held_ids(self) -> set[str]:
        return {tid for pending in self._pending.values() for tid in pending.candidates}

    def tick(self) -> list[Message]:
        """Decides the problems whose wait ran out, with the candidates they have."""
        now = self.clock()
        expired = [key for key, p in self._pending.items() if now - p.first_seen >= self.wait_s]
        return [m for key in expired for m in self._decide(key, timed_out=True)]

    def _add(self, trajectory: records_pb2.Trajectory) -> list[Message]:
        key = (trajectory.problem.batch_id, trajectory.problem.id)
        if key in self._decided:
            return []  # a late or replayed candidate of a problem already decided
        pending = self._pending.setdefault(key, _Pending(trajectory.problem, self.clock()))
        pending.candidates[trajectory.id] = trajectory  # keyed by id: a duplicate replaces itself
        # A problem is complete when all N learner samples are in; Oracle outputs are extra candidates.
        learner_samples = sum(t.origin == records_pb2.ORIGIN_LEARNER_SAMPLE for t in pending.candidates.values())
        if learner_samples < max(trajectory.problem.sampling.samples_per_problem, 1):
            return []
        return self._decide(key, timed_out=False)

    def _decide(self, key: tuple[str, str], *, timed_out: bool) -> list[Message]:
        pending = self._pending.pop(key)
        self._decided[key] = None
        if len(self._decided) > self.remember:
            self._decided.popitem(last=False)
        policy = pending.problem.curation_policy or DEFAULT_POLICY
        candidates = sorted(pending.candidates.values(), key=lambda t: (t.origin, t.sample_index, t.id))
        decision, example = decide(pending.problem, candidates, policy, timed_out=timed_out)
        return [decision] if example is None else [decision, example]
