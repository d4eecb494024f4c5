"""The refiner's logic: the paper's two Oracle baselines.

What it takes from the stream is what the batch asked for (services/oracle/selection.py):
`refine` each correct learner sample, `synthesize` each problem once.
"""

from __future__ import annotations

from collections.abc import Sequence

from learnerfit.v1 import records_pb2
from services.oracle.prompts import template
from services.oracle.selection import REFINE, SYNTHESIZE, tasks
from services.oracle.writer import Draft, OracleWriter


def refine_draft(trajectory: records_pb2.Trajectory) -> Draft:
    prompt = template("refine")
    return Draft(trajectory.problem, records_pb2.ORIGIN_ORACLE_REFINED,
                 prompt.render(question=trajectory.problem.question, trace=trajectory.text), [prompt.id],
                 parent=trajectory)


def synthesize_draft(problem: records_pb2.Problem) -> Draft:
    prompt = template("synthesize")
    return Draft(problem, records_pb2.ORIGIN_ORACLE_SYNTHESIZED, prompt.render(question=problem.question),
                 [prompt.id])


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

    def __call__(self, trajectories: Sequence[records_pb2.Trajectory]) -> list[list[records_pb2.Trajectory]]:
        per_input = [self.stream_drafts(t) for t in trajectories]
        written = iter(self.writer.write([d for drafts in per_input for d in drafts]))
        return [[next(written) for _ in drafts] for drafts in per_input]

    def refine(self, trajectories: Sequence[records_pb2.Trajectory], synthesize: bool) -> list[records_pb2.Trajectory]:
        """The gRPC path: one mode for every given trajectory (synthesize uses only its problem)."""
        drafts = [synthesize_draft(t.problem) if synthesize else refine_draft(t) for t in trajectories]
        return self.writer.write(drafts)
