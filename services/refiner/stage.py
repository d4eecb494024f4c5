"""The refiner's logic: the paper's two Oracle baselines.

From the stream it takes learner samples only (its own outputs come back scored and
are ignored): `refine` each learner trace whose verdict is selected (default: the
correct ones), `synthesize` each problem once (on its sample 0).
"""

from __future__ import annotations

from collections.abc import Sequence

from learnerfit.v1 import records_pb2
from services.common.trajectories import verdict_name
from services.oracle.prompts import template
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
    def __init__(self, writer: OracleWriter, modes: Sequence[str], refine_verdicts: Sequence[str]):
        self.writer = writer
        self.modes = set(modes)
        self.refine_verdicts = set(refine_verdicts)

    def stream_drafts(self, trajectory: records_pb2.Trajectory) -> list[Draft]:
        if trajectory.origin != records_pb2.ORIGIN_LEARNER_SAMPLE:
            return []
        drafts = []
        if "refine" in self.modes and verdict_name(trajectory.scores.verdict) in self.refine_verdicts:
            drafts.append(refine_draft(trajectory))
        if "synthesize" in self.modes and trajectory.sample_index == 0:
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
