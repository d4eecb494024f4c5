"""Batches: how a submission becomes a batch of problems, and the progress of every batch, folded from the
pipeline's topics.

The ledger holds no state of its own that the log does not: a restarted gateway
reads the topics from the beginning and arrives at the same counts. Every record
is counted once by its stable id, so redelivered duplicates change nothing.

A batch is complete when every problem is settled: decided (with its example, when
one was chosen, and every Oracle output it waited for), or failed, when a stage
dead-lettered one of its records and no decision came. Finished batches are kept up
to a bound, oldest forgotten first, so a gateway that runs for days stays bounded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from learnerfit.domain import topics
from learnerfit.domain.curation.policies import check_policy
from learnerfit.domain.drift import set_rsr
from learnerfit.domain.ids import stable_id
from learnerfit.domain.intake import (
    IntakeLimits,
    SamplingDefaults,
    complete_sampling,
    validate_problems,
    validate_sampling,
)
from learnerfit.domain.oracle.selection import MODE_NAMES, expected_outputs, is_rejected
from learnerfit.domain.oracle.spend import BUDGET_EXHAUSTED, has_budget
from learnerfit.errors import InvalidInput
from learnerfit.recent import Recent
from learnerfit.v1 import records_pb2, runtime_pb2, services_pb2


def prepare_batch(request: services_pb2.SubmitBatchRequest, limits: IntakeLimits, defaults: SamplingDefaults,
                  default_policy: str) -> tuple[str, list[records_pb2.Problem]]:
    """Validates a submission and returns its batch id and problems with ids, sampling and policy filled in."""
    validate_problems(request.problems, limits)
    sampling = complete_sampling(request.sampling if request.HasField("sampling") else None, defaults)
    validate_sampling(sampling, limits, "sampling")
    policy = request.curation_policy or default_policy
    check_policy(policy, "curation_policy")
    modes = list(request.oracle_modes)
    for i, mode in enumerate(modes):
        if mode not in MODE_NAMES:
            raise InvalidInput(f"oracle_modes[{i}]", f"unknown Oracle mode {mode}; known: {sorted(MODE_NAMES.values())}")
        if mode in modes[:i]:
            raise InvalidInput(f"oracle_modes[{i}]", f"{MODE_NAMES[mode]} given twice")
    modes.sort()
    budget = request.oracle_budget
    check_budget(budget, bool(modes))
    contents = [stable_id("content", p.question, p.reference_answer, p.source) for p in request.problems]
    first_index: dict[str, int] = {}
    for i, content in enumerate(contents):
        if content in first_index:
            raise InvalidInput(f"problems[{i}]", f"duplicates problems[{first_index[content]}]")
        first_index[content] = i
    # Same problems, sampling and policy -> same batch: a retried submission is recognised.
    batch_id = stable_id("batch", *contents, sampling.SerializeToString(deterministic=True).hex(), policy,
                         *([f"oracle:{m}" for m in modes]),
                         *([f"budget:{budget.SerializeToString(deterministic=True).hex()}"] if has_budget(budget) else []))
    problems = [records_pb2.Problem(id=stable_id("problem", batch_id, content), batch_id=batch_id,
                                    question=given.question, reference_answer=given.reference_answer,
                                    source=given.source, sampling=sampling, curation_policy=policy, oracle_modes=modes,
                                    reference_solution=given.reference_solution, batch_problems=len(contents),
                                    oracle_budget=budget)
                for given, content in zip(request.problems, contents, strict=True)]
    return batch_id, problems


def check_budget(budget: records_pb2.OracleBudget, asks_oracle: bool) -> None:
    if not has_budget(budget):
        return
    if not asks_oracle:
        raise InvalidInput("oracle_budget", "the batch asks for no Oracle work (oracle_modes): a budget would cap "
                                            "nothing")
    if budget.HasField("max_cost_usd") and not (0 <= budget.max_cost_usd < float("inf")):
        raise InvalidInput("oracle_budget.max_cost_usd", f"must be a finite number >= 0, got {budget.max_cost_usd}")
    if budget.HasField("max_tokens") and budget.max_tokens < 0:
        raise InvalidInput("oracle_budget.max_tokens", f"must be >= 0, got {budget.max_tokens}")


@dataclass
class _Batch:
    policy: str
    submitted_at: float
    updated_at: float
    expected_samples: dict[str, int] = field(default_factory=dict)  # problem id -> N
    size: int = 0  # problems the batch has, as its problems say (0: records from before they said)
    generated: set[str] = field(default_factory=set)
    scored: set[str] = field(default_factory=set)
    correct: set[str] = field(default_factory=set)
    unparsed: set[str] = field(default_factory=set)
    # trajectory id -> (origin, Oracle mode, verdict, reward, ppl, tokens, latex density, overlap, rsr): the summary
    measures: dict[str, tuple] = field(default_factory=dict)
    problems: dict[str, records_pb2.Problem] = field(default_factory=dict)
    verdicts: dict[str, dict[str, int]] = field(default_factory=dict)  # problem id -> learner sample id -> verdict
    oracle_scored: set[str] = field(default_factory=set)
    oracle_rejected: dict[str, str] = field(default_factory=dict)  # trajectory id -> guardrail
    oracle_arrived: dict[str, set[str]] = field(default_factory=dict)  # problem id -> Oracle outputs, either kind
    oracle_usage: dict[str, tuple] = field(default_factory=dict)  # Oracle output id -> (group, usage, guardrail)
    decided: dict[str, bool] = field(default_factory=dict)  # problem id -> curated?
    timed_out: set[str] = field(default_factory=set)  # problems decided without every candidate
    curated: OrderedDict[str, records_pb2.CuratedExample] = field(default_factory=OrderedDict)
    curated_problems: set[str] = field(default_factory=set)
    failures: dict[str, records_pb2.ProblemFailure] = field(default_factory=dict)  # first dead letter per problem
    bytes: int = 0  # about what the batch holds in memory (records kept whole, plus a fixed cost per counted one)
    lost_problems: set[str] = field(default_factory=set)  # a Problem record dead-lettered: no sample will come
    lost_samples: dict[str, set[str]] = field(default_factory=dict)  # problem id -> learner samples the curator
    #                                                                   will never see (dead-lettered on the way)

    def oracle_expected_for(self, problem_id: str) -> int | None:
        """Oracle outputs a problem's modes call for; None until its learner samples are scored."""
        verdicts = self.verdicts.get(problem_id, {})
        if len(verdicts) < self.expected_samples[problem_id]:
            return None
        return expected_outputs(self.problems[problem_id], verdicts.values())

    def oracle_expected(self) -> int | None:
        """Oracle outputs the batch's modes call for (failed problems aside); None until those are known."""
        total = 0
        for problem_id in self.expected_samples:
            if self.failed(problem_id):
                continue
            expected = self.oracle_expected_for(problem_id)
            if expected is None:
                return None
            total += expected
        return total

    def failed(self, problem_id: str) -> bool:
        """Settled without a decision: nothing of the problem can reach the curator (its record, or every one of
        its learner samples, dead-lettered on the way). With some samples through, the curator decides on them
        once its wait runs out, and the problem is settled by that decision."""
        if problem_id in self.decided or problem_id not in self.failures:
            return False
        lost = len(self.lost_samples.get(problem_id, ()))
        return problem_id in self.lost_problems or lost >= max(self.expected_samples.get(problem_id, 1), 1)

    def settled(self, problem_id: str) -> bool:
        if problem_id not in self.decided:
            return self.failed(problem_id)
        if self.decided[problem_id] and problem_id not in self.curated_problems:
            return False  # the example is on its way
        if problem_id in self.timed_out:
            return True
        expected = self.oracle_expected_for(problem_id)
        return expected is not None and len(self.oracle_arrived.get(problem_id, ())) >= expected

    def complete(self) -> bool:
        # Every problem read first: problems come on several partitions, read in any order.
        return len(self.expected_samples) >= max(self.size, 1) and all(self.settled(p) for p in self.expected_samples)


EARLY_LETTERS_KEPT = 100_000
# A learner sample dead-lettered from these topics, or by the curator, never reaches the curator as a candidate.
_BEFORE_CURATION = {topics.TRAJECTORIES, topics.REWARDED}
CURATOR_STAGE = "curator"


# What a record costs the ledger beyond what it keeps whole: its ids in sets and dicts, a tuple of measures.
ENTRY_BYTES = 200


class BatchLedger:
    def __init__(self, keep_finished: int = 1000, keep_finished_bytes: int = 256 * 2**20) -> None:
        self.keep_finished = keep_finished
        self.keep_finished_bytes = keep_finished_bytes  # finished batches are let go past either bound
        self._batches: dict[str, _Batch] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()  # complete batches, oldest first
        self._forgotten = Recent(100_000)  # batches dropped past the bound: their late records are ignored
        self._problem_batch: dict[str, str] = {}  # problem id -> batch id, to place dead letters
        # Dead letters read before their problem (the topics are read in no set order), placed when it arrives.
        self._early_letters: OrderedDict[str, list[runtime_pb2.DeadLetter]] = OrderedDict()
        self._touched: str | None = None  # the batch the record being folded belongs to
        self._finished_bytes = 0
        self._changed = threading.Condition()

    def knows(self, batch_id: str) -> bool:
        with self._changed:
            return batch_id in self._batches

    def holds_all(self, batch_id: str, problem_ids: list[str]) -> bool:
        """Whether every one of the batch's problems has been recorded (a submission that got only part of its
        problems onto the bus before failing is not whole, and its retry publishes them)."""
        with self._changed:
            batch = self._batches.get(batch_id)
            return batch is not None and all(p in batch.expected_samples for p in problem_ids)

    def forgotten(self, batch_id: str) -> bool:
        with self._changed:
            return batch_id in self._forgotten

    def sizes(self) -> dict[str, int]:
        """What the ledger holds, for its metrics. A batch none of whose problems is on the topic (they expired,
        while its decisions stay on their compacted topic) is not live: it can never finish."""
        with self._changed:
            live = [b for batch_id, b in self._batches.items() if b.expected_samples and batch_id not in self._finished]
            return {"live_batches": len(live), "finished_batches": len(self._finished),
                    "problems": len(self._problem_batch), "live_bytes": sum(b.bytes for b in live),
                    "finished_bytes": self._finished_bytes,
                    "orphan_batches": sum(not b.expected_samples for b in self._batches.values())}

    def drop_orphans(self, older_than_s: float = 0.0) -> int:
        """Forgets batches none of whose problems has been read, untouched for older_than_s: their problems expired
        from the topic while their decisions stay on the compacted one, so they can never finish (their later
        records are ignored). Only once the topics are read to where they ended at start: before, a problem may
        just not be read yet. Returns how many were dropped."""
        with self._changed:
            cutoff = time.time() - older_than_s
            orphans = [batch_id for batch_id, b in self._batches.items()
                       if not b.expected_samples and b.updated_at <= cutoff]
            for batch_id in orphans:
                del self._batches[batch_id]
                self._forgotten.add(batch_id)
            return len(orphans)

    def apply(self, message: Message) -> None:
        """Folds one record from any of the followed topics into the ledger. A learner trajectory
        counts as generated when first seen, and also as scored once it carries a verdict."""
        with self._changed:
            cost = ENTRY_BYTES + (message.ByteSize() if isinstance(message, (records_pb2.Problem,
                                                                            records_pb2.CuratedExample)) else 0)
            if isinstance(message, records_pb2.Problem):
                self._add_problem(message)
            elif isinstance(message, records_pb2.Trajectory):
                self._add_trajectory(message)
            elif isinstance(message, records_pb2.CurationDecision):
                self._add_decision(message)
            elif isinstance(message, records_pb2.CuratedExample):
                self._add_curated(message)
            elif isinstance(message, runtime_pb2.DeadLetter):
                self._add_dead_letter(message)
            else:
                raise TypeError(f"ledger cannot fold {type(message).__name__}")
            if self._touched is not None:
                self._batches[self._touched].bytes += cost
                if self._touched in self._finished:  # a late record of a finished batch
                    self._finished_bytes += cost
            self._note_finished()
            self._changed.notify_all()

    def status(self, batch_id: str) -> records_pb2.BatchStatus | None:
        with self._changed:
            batch = self._batches.get(batch_id)
            if batch is None or not batch.expected_samples:  # unknown, or its problems expired from the topic
                return None
            return records_pb2.BatchStatus(
                batch_id=batch_id,
                state=records_pb2.BATCH_STATE_COMPLETE if batch.complete() else records_pb2.BATCH_STATE_RUNNING,
                problems=len(batch.expected_samples),
                samples_expected=sum(batch.expected_samples.values()),
                samples_generated=len(batch.generated),
                samples_scored=len(batch.scored),
                samples_correct=len(batch.correct),
                samples_unparsed=len(batch.unparsed),
                problems_decided=len(batch.decided),
                curated=len(batch.curated),
                curation_policy=batch.policy,
                summaries=_summaries(batch.measures.values()),
                oracle_expected=batch.oracle_expected() or 0,
                oracle_scored=len(batch.oracle_scored),
                oracle_rejected=len(batch.oracle_rejected),
                oracle_rejections=Counter(batch.oracle_rejected.values()),
                submitted_at=_timestamp(batch.submitted_at),
                updated_at=_timestamp(batch.updated_at),
                problems_failed=sum(batch.failed(p) for p in batch.expected_samples),
                failures=[f for p, f in batch.failures.items() if batch.failed(p)],
                oracle_spend=_spend(batch.oracle_usage, batch.curated.values()),
                oracle_budget_exhausted=BUDGET_EXHAUSTED in batch.oracle_rejected.values(),
                oracle_budget=next(iter(batch.problems.values())).oracle_budget,
            )

    def curated_from(self, batch_id: str, start: int) -> tuple[list[records_pb2.CuratedExample], bool]:
        """The batch's curated examples from position `start` on, and whether the batch is complete."""
        with self._changed:
            batch = self._batches.get(batch_id)
            if batch is None:
                return [], True  # forgotten past the bound of finished batches while streamed
            return list(batch.curated.values())[start:], batch.complete()

    def wait(self, timeout_s: float) -> None:
        """Blocks until something changes (or timeout_s passes)."""
        with self._changed:
            self._changed.wait(timeout_s)

    def _batch_of(self, batch_id: str, policy: str = "") -> _Batch:
        now = time.time()
        if batch_id in self._forgotten:
            return _Batch(policy=policy, submitted_at=now, updated_at=now)  # a late record of a dropped batch
        batch = self._batches.setdefault(batch_id, _Batch(policy=policy, submitted_at=now, updated_at=now))
        batch.updated_at = now
        self._touched = batch_id
        return batch

    def _note_finished(self) -> None:
        """Marks the batch the last record touched finished once complete; forgets the oldest finished ones past
        the bound."""
        batch_id, self._touched = self._touched, None
        if batch_id is not None and batch_id not in self._finished and self._batches[batch_id].complete():
            self._finished[batch_id] = None
            self._finished_bytes += self._batches[batch_id].bytes
        while self._finished and (len(self._finished) > self.keep_finished
                                  or self._finished_bytes > self.keep_finished_bytes):
            batch_id, _ = self._finished.popitem(last=False)
            dropped = self._batches.pop(batch_id)
            self._finished_bytes -= dropped.bytes
            for problem_id in dropped.expected_samples:
                self._problem_batch.pop(problem_id, None)
            self._forgotten.add(batch_id)

    def _add_problem(self, problem: records_pb2.Problem) -> None:
        batch = self._batch_of(problem.batch_id, problem.curation_policy)
        batch.expected_samples[problem.id] = problem.sampling.samples_per_problem
        batch.size = max(batch.size, problem.batch_problems)
        batch.problems[problem.id] = problem
        if problem.batch_id not in self._forgotten:
            self._problem_batch[problem.id] = problem.batch_id
        for letter in self._early_letters.pop(problem.id, ()):
            self._place_letter(batch, letter)

    def _add_dead_letter(self, letter: runtime_pb2.DeadLetter) -> None:
        batch_id = self._problem_batch.get(letter.problem_id)
        if batch_id is None:
            # Its problem not read yet (or of a batch let go, or of none): kept, bounded, until the problem comes.
            self._early_letters.setdefault(letter.problem_id, []).append(letter)
            while len(self._early_letters) > EARLY_LETTERS_KEPT:
                self._early_letters.popitem(last=False)
            return
        self._place_letter(self._batch_of(batch_id), letter)

    @staticmethod
    def _place_letter(batch: _Batch, letter: runtime_pb2.DeadLetter) -> None:
        problem_id = letter.problem_id
        batch.failures.setdefault(problem_id, records_pb2.ProblemFailure(problem_id=problem_id, stage=letter.stage,
                                                                         reason=letter.reason))
        if letter.record_type == records_pb2.Problem.DESCRIPTOR.full_name:
            batch.lost_problems.add(problem_id)
        elif letter.source_topic in _BEFORE_CURATION or letter.stage == CURATOR_STAGE:
            trajectory = records_pb2.Trajectory()
            try:
                trajectory.ParseFromString(letter.value)
            except DecodeError:
                pass  # unreadable (or left out of the letter for its size): counted as a learner sample
            if trajectory.origin in (records_pb2.ORIGIN_UNSPECIFIED, records_pb2.ORIGIN_LEARNER_SAMPLE):
                batch.lost_samples.setdefault(problem_id, set()).add(letter.record_id or letter.id)

    def _add_trajectory(self, trajectory: records_pb2.Trajectory) -> None:
        batch = self._batch_of(trajectory.problem.batch_id)
        scores = trajectory.scores
        if scores.verdict != records_pb2.VERDICT_UNSPECIFIED:
            batch.measures[trajectory.id] = (
                trajectory.origin, trajectory.oracle_mode, scores.verdict,
                scores.reward if scores.HasField("reward") else None,
                scores.ppl if scores.HasField("ppl") else None, scores.token_count,
                trajectory.style.latex_density if trajectory.HasField("style") else None,
                trajectory.style.overlap_with_parent if trajectory.style.HasField("overlap_with_parent") else None,
                scores.mean_token_rank if scores.HasField("mean_token_rank") else None)
        if trajectory.origin != records_pb2.ORIGIN_LEARNER_SAMPLE:
            batch.oracle_usage[trajectory.id] = ((trajectory.origin, trajectory.oracle_mode, trajectory.model),
                                                 trajectory.oracle_usage, trajectory.rejection.guardrail)
            if is_rejected(trajectory):
                batch.oracle_rejected[trajectory.id] = trajectory.rejection.guardrail
            elif scores.verdict != records_pb2.VERDICT_UNSPECIFIED:
                batch.oracle_scored.add(trajectory.id)
            else:
                return  # not scored yet: it has not arrived at the curator either
            batch.oracle_arrived.setdefault(trajectory.problem.id, set()).add(trajectory.id)
            return  # the learner-sample counts below are the batch's main progress
        batch.generated.add(trajectory.id)
        if trajectory.scores.verdict == records_pb2.VERDICT_UNSPECIFIED:
            return
        batch.scored.add(trajectory.id)
        verdict = trajectory.scores.verdict
        batch.verdicts.setdefault(trajectory.problem.id, {})[trajectory.id] = verdict
        if verdict == records_pb2.VERDICT_CORRECT:
            batch.correct.add(trajectory.id)
        elif verdict == records_pb2.VERDICT_UNPARSED:
            batch.unparsed.add(trajectory.id)

    def _add_decision(self, decision: records_pb2.CurationDecision) -> None:
        batch = self._batch_of(decision.batch_id)
        batch.decided[decision.problem_id] = decision.curated
        if decision.timed_out:
            batch.timed_out.add(decision.problem_id)

    def _add_curated(self, example: records_pb2.CuratedExample) -> None:
        batch = self._batch_of(example.batch_id)
        batch.curated.setdefault(example.id, example)
        batch.curated_problems.add(example.problem_id)


def _spend(usages: dict[str, tuple], curated) -> list[records_pb2.OracleSpend]:
    """The batch's Oracle spend by origin, mode and model: tokens and cost of its outputs (what the rejected ones
    cost apart), how many were curated, and how many were never asked for (the budget had run out)."""
    groups: dict[tuple, records_pb2.OracleSpend] = {}

    def group(key: tuple) -> records_pb2.OracleSpend:
        return groups.setdefault(key, records_pb2.OracleSpend(origin=key[0], oracle_mode=key[1], model=key[2]))

    for key, usage, guardrail in usages.values():
        spend = group(key)
        if guardrail == BUDGET_EXHAUSTED:
            spend.refused += 1
            continue
        spend.outputs += 1
        spend.rejected += bool(guardrail)
        spend.prompt_tokens += usage.prompt_tokens
        spend.completion_tokens += usage.completion_tokens
        spend.cached_tokens += usage.cached_tokens
        spend.counted += usage.source in (records_pb2.USAGE_SOURCE_COUNTED, records_pb2.USAGE_SOURCE_ESTIMATED)
        if usage.HasField("cost_usd"):
            spend.cost_usd += usage.cost_usd
            if guardrail:
                spend.rejected_cost_usd += usage.cost_usd
    for example in curated:
        if example.trajectory_id in usages:
            group(usages[example.trajectory_id][0]).curated += 1
    return [groups[key] for key in sorted(groups)]


def _summaries(measures) -> list[records_pb2.ScoreSummary]:
    groups: dict[tuple[int, int, int], list] = {}
    for origin, mode, verdict, *values in measures:
        groups.setdefault((origin, mode, verdict), []).append(values)
    summaries = []
    for (origin, mode, verdict), rows in sorted(groups.items()):
        summary = records_pb2.ScoreSummary(origin=origin, oracle_mode=mode, verdict=verdict, samples=len(rows))
        for column, name in enumerate(("mean_reward", "mean_ppl", "mean_tokens", "mean_latex_density",
                                       "mean_overlap")):
            values = [row[column] for row in rows if row[column] is not None]
            if values:
                setattr(summary, name, sum(values) / len(values))
        rsr = set_rsr([records_pb2.Scores(ppl=ppl, mean_token_rank=rank) for _, ppl, *_, rank in rows
                       if ppl is not None and rank is not None])
        if rsr is not None:
            summary.mean_rsr = rsr
        summaries.append(summary)
    return summaries


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp
