"""Which Oracle outputs a learner sample calls for: one definition for the Oracle services and the gateway's count.

The batch asks for modes (Problem.oracle_modes). From the stream of scored learner
samples: refine and rewrite take each correct sample, synthesize takes each problem
once (its sample 0), repair takes each problem's first incorrect sample (samples of
a problem arrive in order on its partition).
"""

from __future__ import annotations

from collections.abc import Iterable

from learnerfit.domain import topics
from learnerfit.domain.records import mode_name
from learnerfit.v1 import records_pb2

REFINE, SYNTHESIZE, REWRITE, REPAIR = (records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_SYNTHESIZE,
                                       records_pb2.ORACLE_MODE_REWRITE, records_pb2.ORACLE_MODE_REPAIR)
MODE_NAMES = {mode: mode_name(mode) for mode in (REFINE, SYNTHESIZE, REWRITE, REPAIR)}
MODES_BY_NAME = {name: mode for mode, name in MODE_NAMES.items()}


def tasks(trajectory: records_pb2.Trajectory) -> set[int]:
    """The modes this scored learner sample is input to (repair: a candidate; the first per problem is taken)."""
    if trajectory.origin != records_pb2.ORIGIN_LEARNER_SAMPLE:
        return set()  # Oracle outputs come back scored; they are never Oracle input themselves
    asked, verdict = set(trajectory.problem.oracle_modes), trajectory.scores.verdict
    wanted = set()
    if verdict == records_pb2.VERDICT_CORRECT:
        wanted |= asked & {REFINE, REWRITE}
    if verdict == records_pb2.VERDICT_INCORRECT:
        wanted |= asked & {REPAIR}
    if trajectory.sample_index == 0:
        wanted |= asked & {SYNTHESIZE}
    return wanted


def expected_outputs(problem: records_pb2.Problem, verdicts: Iterable[int]) -> int:
    """Oracle outputs (accepted or rejected) a problem yields once all its learner samples are scored."""
    verdicts = list(verdicts)
    asked = set(problem.oracle_modes)
    correct = sum(v == records_pb2.VERDICT_CORRECT for v in verdicts)
    return (correct * len(asked & {REFINE, REWRITE}) + (SYNTHESIZE in asked)
            + (REPAIR in asked and records_pb2.VERDICT_INCORRECT in verdicts))


def is_rejected(trajectory: records_pb2.Trajectory) -> bool:
    """An Oracle output a guardrail rejected: counted as arrived, never scored or curated."""
    return trajectory.HasField("rejection")


def rejected_route(trajectory: records_pb2.Trajectory) -> str | None:
    """Rejected Oracle outputs go to their own topic: kept and explained, but never scored or curated."""
    return topics.ORACLE_REJECTED if is_rejected(trajectory) else None
