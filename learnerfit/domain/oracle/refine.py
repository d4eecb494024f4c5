"""The refiner's logic: the paper's two Oracle baselines.

What it takes from the stream is what the batch asked for (selection.py):
`refine` each correct learner sample, `synthesize` each problem once.
"""

from __future__ import annotations

from collections.abc import Sequence

from learnerfit.domain.oracle.selection import REFINE, SYNTHESIZE, tasks
from learnerfit.domain.oracle.tasks import OracleTask
from learnerfit.domain.oracle.writer import Draft, OracleWriter
from learnerfit.errors import InvalidInput
from learnerfit.v1 import records_pb2


def refine_draft(trajectory: records_pb2.Trajectory) -> Draft:
    return Draft(OracleTask(REFINE, trajectory.problem, trace=trajectory.text), records_pb2.ORIGIN_ORACLE_REFINED,
                 parent=trajectory)


def synthesize_draft(problem: records_pb2.Problem) -> Draft:
    return Draft(OracleTask(SYNTHESIZE, problem), records_pb2.ORIGIN_ORACLE_SYNTHESIZED)


class Refiner:
    def __init__(self, writer: OracleWriter):
        self.writer = writer

    def stream_drafts(self, trajectory: records_pb2.Trajectory) -> list[Draft]:
        wanted = tasks(trajectory)
        drafts = []
        if REFINE in wanted:
            drafts.append(refine_draft(trajectory))
        if SYNTHESIZE in wanted:
            drafts.append(synthesize_draft(trajectory.problem))
        return drafts

    def __call__(self, trajectories: Sequence[records_pb2.Trajectory]) -> list[records_pb2.Trajectory]:
        return self.writer.write(self.writer.unwritten([d for t in trajectories for d in self.stream_drafts(t)]))

    def refine(self, trajectories: Sequence[records_pb2.Trajectory], mode: int) -> list[records_pb2.Trajectory]:
        """The gRPC path: one mode for every given trajectory (synthesize uses only its problem)."""
        if mode not in (REFINE, SYNTHESIZE):
            raise InvalidInput("mode", "must be ORACLE_MODE_REFINE or ORACLE_MODE_SYNTHESIZE")
        drafts = [synthesize_draft(t.problem) if mode == SYNTHESIZE else refine_draft(t) for t in trajectories]
        return self.writer.write(drafts)
