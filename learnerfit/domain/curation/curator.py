"""The curator's logic: gathers each problem's candidates, decides once all arrived or the wait ran out.

A problem is complete when its N learner samples are in and every Oracle output the
batch asked for has arrived: accepted ones as scored candidates, rejected ones from
the `oracle-rejected` topic (counted, never candidates). The count comes from the
same rule the Oracle services follow (learnerfit/domain/oracle/selection.py).
The gRPC path and the stream decide with the same policy context, and a decision depends
only on its problem's candidates (the utility policy's perplexity reference is the
median of the problem's own learner samples), so a replica that replays a problem, or
a replay after a crash, decides the same.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from learnerfit.domain.curation.policies import (
    DEFAULT_POLICY,
    POLICIES,
    PolicyContext,
    check_policy,
)
from learnerfit.domain.ids import stable_id
from learnerfit.domain.oracle.selection import expected_outputs, is_rejected
from learnerfit.domain.prompts import training_messages
from learnerfit.recent import Recent
from learnerfit.section import Section
from learnerfit.v1 import records_pb2

log = logging.getLogger(__name__)
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|[=+\-*/^()<>]")
Output = records_pb2.CurationDecision | records_pb2.CuratedExample


class CurationSettings(Section):
    """How the curator waits and weighs."""

    problem_wait_s: float = Field(
        600.0, gt=0, description="Longest wait for a problem's missing candidates before deciding with what arrived.")
    utility_weight: float = Field(1.0, ge=0, description="utility policy: reward - weight * ln(compatibility cost).")
    utility_cost: Literal["ppl", "rsr"] = Field(
        "ppl", description="utility policy: the compatibility cost, the learner's perplexity (ppl) or the "
                           "rank-surprisal ratio (rsr, Yang et al. 2026), both lower-is-closer.")
    ppl_ceiling_factor: float = Field(1.5, gt=0, description="utility policy: skip candidates whose ppl exceeds this "
                                                               "times the median ppl of the problem's own learner samples.")
    min_step_accuracy: float = Field(
        0.0, ge=0, le=1, description="Every policy: keep a correct candidate only if at least this share of its "
                                     "arithmetic steps hold (the reward scorer's exact check; 1: every step). A "
                                     "trace with no step the check can read is then not kept either. 0: off.")

    def policy_context(self, learner_ppl_median: float | None = None) -> PolicyContext:
        return PolicyContext(utility_weight=self.utility_weight, ppl_ceiling_factor=self.ppl_ceiling_factor,
                             utility_cost=self.utility_cost, learner_ppl_median=learner_ppl_median,
                             min_step_accuracy=self.min_step_accuracy)


def normalized(text: str) -> str:
    """What two solutions must share to count as the same: numbers, words and operators, in order
    (case, spacing and other punctuation ignored)."""
    return " ".join(_TOKEN.findall(text.lower()))


def _order(t: records_pb2.Trajectory) -> tuple:
    return t.origin, t.sample_index, t.id


def deduplicated(candidates: Sequence[records_pb2.Trajectory]) -> tuple[list[records_pb2.Trajectory], int]:
    """One candidate per near-identical text (the first by origin, sample index, id); and how many were dropped."""
    kept: dict[str, records_pb2.Trajectory] = {}
    for t in sorted(candidates, key=_order):
        kept.setdefault(normalized(t.text), t)
    return list(kept.values()), len(candidates) - len(kept)


def decide(
    problem: records_pb2.Problem,
    candidates: Sequence[records_pb2.Trajectory],
    policy: str,
    *,
    timed_out: bool = False,
    context: PolicyContext | None = None,
) -> tuple[records_pb2.CurationDecision, records_pb2.CuratedExample | None]:
    """Applies `policy` to one problem's candidates: always a decision, and an example when one is chosen."""
    unique, dropped = deduplicated(candidates)
    choice = POLICIES[policy](unique, context or CurationSettings().policy_context())
    reason = choice.reason + (f"; {dropped} near-duplicate(s) dropped" if dropped else "")
    decision = records_pb2.CurationDecision(
        id=stable_id("decision", problem.batch_id, problem.id, policy),
        problem_id=problem.id,
        batch_id=problem.batch_id,
        policy=policy,
        candidates=len(candidates),
        correct_candidates=sum(t.scores.verdict == records_pb2.VERDICT_CORRECT for t in candidates),
        curated=choice.trajectory is not None,
        reason=reason + (" (decided after the wait ran out)" if timed_out else ""),
        timed_out=timed_out,
    )
    if choice.trajectory is None:
        return decision, None
    decision.chosen_trajectory_id = choice.trajectory.id
    example = example_of(choice.trajectory, policy, reason)
    if choice.utility is not None:
        example.utility = choice.utility
    return decision, example


def example_of(chosen: records_pb2.Trajectory, policy: str, reason: str) -> records_pb2.CuratedExample:
    """The training example a chosen trajectory becomes: the sampling conversation, then its text."""
    return records_pb2.CuratedExample(
        id=stable_id("example", chosen.id, policy), trajectory_id=chosen.id, problem_id=chosen.problem.id,
        batch_id=chosen.problem.batch_id, origin=chosen.origin, messages=training_messages(chosen.problem, chosen.text),
        scores=chosen.scores, policy=policy, reason=reason, model=chosen.model, checkpoint=chosen.checkpoint)


def failed_decision(problem: records_pb2.Problem, policy: str, candidates: Sequence[records_pb2.Trajectory],
                    error: Exception) -> records_pb2.CurationDecision:
    return records_pb2.CurationDecision(
        id=stable_id("decision", problem.batch_id, problem.id, policy), problem_id=problem.id,
        batch_id=problem.batch_id, policy=policy, candidates=len(candidates), curated=False,
        reason=f"policy {policy} failed: {type(error).__name__}: {error}")


@dataclass
class _Pending:
    problem: records_pb2.Problem
    first_seen: float
    candidates: dict[str, records_pb2.Trajectory] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)  # Oracle outputs a guardrail rejected: arrived, not candidates

    def complete(self) -> bool:
        learner = [t for t in self.candidates.values() if t.origin == records_pb2.ORIGIN_LEARNER_SAMPLE]
        if len(learner) < max(self.problem.sampling.samples_per_problem, 1):
            return False
        oracle_arrived = len(self.candidates) - len(learner) + len(self.rejected)
        return oracle_arrived >= expected_outputs(self.problem, [t.scores.verdict for t in learner])


class Curator:
    """Stateful stage. Candidates wait here until their problem is decided; the runner commits no
    offset past a waiting candidate, so after a crash they are read again and nothing is lost.

    Which problems are decided is the `decisions` topic's to say, not this process's memory: the
    service folds it (`remember`) before it reads a candidate, so a restarted or added replica never
    decides a problem twice. A decision is published only after its example is acknowledged, so a
    decision on the topic means its example is there too.
    """

    def __init__(self, settings: CurationSettings, remember: int = 100_000,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._decided = Recent(remember)
        # The stage thread adds and decides; the follower thread folds decisions from the topic; the consumer's
        # rebalance listener releases candidates: one lock over the pending problems and the decided ones.
        self._lock = threading.RLock()

    # -- the stream --------------------------------------------------------------

    def __call__(self, trajectories: Sequence[records_pb2.Trajectory]) -> list[Output]:
        with self._lock:
            return [output for t in trajectories for output in self._add(t)]

    def held_ids(self) -> set[str]:
        with self._lock:
            return {tid for pending in self._pending.values() for tid in (*pending.candidates, *pending.rejected)}

    def remember(self, decision: records_pb2.CurationDecision) -> None:
        """Folds a decision from the `decisions` topic (this replica's, an earlier run's or another replica's)."""
        key = (decision.batch_id, decision.problem_id)
        with self._lock:
            self._decided.add(key)
            self._pending.pop(key, None)  # decided elsewhere: its candidates are no longer held here

    def release(self, trajectory_ids: set[str]) -> None:
        """Forgets held candidates whose partitions moved to another replica, which reads them again."""
        with self._lock:
            for key, pending in list(self._pending.items()):
                for tid in trajectory_ids & (pending.candidates.keys() | pending.rejected):
                    pending.candidates.pop(tid, None)
                    pending.rejected.discard(tid)
                if not pending.candidates and not pending.rejected:
                    del self._pending[key]

    def pending_problems(self) -> int:
        with self._lock:
            return len(self._pending)

    def tick(self) -> list[Output]:
        """Decides the problems whose wait ran out, with the candidates they have."""
        now = self.clock()
        with self._lock:
            expired = [key for key, p in self._pending.items() if now - p.first_seen >= self.settings.problem_wait_s]
            return [m for key in expired for m in self._decide(key, timed_out=True)]

    def _add(self, trajectory: records_pb2.Trajectory) -> list[Output]:
        key = (trajectory.problem.batch_id, trajectory.problem.id)
        if key in self._decided:
            return []  # a late or replayed candidate of a problem already decided
        pending = self._pending.setdefault(key, _Pending(trajectory.problem, self.clock()))
        if is_rejected(trajectory):
            pending.rejected.add(trajectory.id)
        else:
            pending.candidates[trajectory.id] = trajectory  # keyed by id: a duplicate replaces itself
        return self._decide(key, timed_out=False) if pending.complete() else []

    def context(self, candidates: Sequence[records_pb2.Trajectory]) -> PolicyContext:
        """The policy context of one problem: the settings' weights, and the median perplexity of its own learner
        samples among `candidates` (a reference no other problem, replica or read order can move)."""
        values = sorted(t.scores.ppl for t in candidates
                        if t.origin == records_pb2.ORIGIN_LEARNER_SAMPLE and t.scores.HasField("ppl"))
        return self.settings.policy_context(values[len(values) // 2] if values else None)

    def _decide(self, key: tuple[str, str], *, timed_out: bool) -> list[Output]:
        pending = self._pending[key]
        policy = pending.problem.curation_policy or DEFAULT_POLICY
        candidates = sorted(pending.candidates.values(), key=_order)
        try:
            decision, example = decide(pending.problem, candidates, policy, timed_out=timed_out,
                                       context=self.context(candidates))
        except Exception as exc:  # a policy that raises settles the problem, uncurated, with the reason
            log.exception("policy %s failed on problem %s", policy, pending.problem.id)
            decision, example = failed_decision(pending.problem, policy, candidates, exc), None
        # Marked decided only now that the decision exists; the runner publishes it after the example.
        del self._pending[key]
        self._decided.add(key)
        return [decision] if example is None else [decision, example]

    # -- gRPC ------------------------------------------------------------------

    def curate(self, trajectories: Sequence[records_pb2.Trajectory], policy: str = ""
               ) -> list[tuple[records_pb2.CurationDecision, records_pb2.CuratedExample | None]]:
        """Decides on the candidates given, per problem, without waiting for more (the same policy context as the
        stream: the settings' weights and the problem's learner perplexities)."""
        if policy:
            check_policy(policy, "policy")
        by_problem: dict[tuple[str, str], list[records_pb2.Trajectory]] = {}
        for trajectory in trajectories:
            by_problem.setdefault((trajectory.problem.batch_id, trajectory.problem.id), []).append(trajectory)
        decided = []
        for candidates in by_problem.values():
            problem = candidates[0].problem
            if not policy and problem.curation_policy:
                where = next(i for i, t in enumerate(trajectories) if t.problem.id == problem.id)
                check_policy(problem.curation_policy, f"trajectories[{where}].problem.curation_policy")
            decided.append(decide(problem, sorted(candidates, key=_order),
                                  policy or problem.curation_policy or DEFAULT_POLICY,
                                  context=self.context(candidates)))
        return decided
