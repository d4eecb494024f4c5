"""Curation policies: given one problem's scored candidates, which one (if any) becomes training data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from learnerfit.v1 import records_pb2


@dataclass(frozen=True)
class Choice:
    trajectory: records_pb2.Trajectory | None
    reason: str


def rejection_sampling(candidates: Sequence[records_pb2.Trajectory]) -> Choice:
    """The paper's SLM-RFT: one correct learner sample per problem (the first by sample index)."""
    samples = [t for t in candidates if t.origin == records_pb2.ORIGIN_LEARNER_SAMPLE]
    correct = sorted((t for t in samples if t.scores.verdict == records_pb2.VERDICT_CORRECT),
                     key=lambda t: t.sample_index)
    if not correct:
        return Choice(None, f"no correct learner sample among {len(samples)}")
    return Choice(correct[0], f"first correct learner sample ({len(correct)} of {len(samples)} correct)")


POLICIES: dict[str, Callable[[Sequence[records_pb2.Trajectory]], Choice]] = {
    "rejection_sampling": rejection_sampling,
}
DEFAULT_POLICY = "rejection_sampling"
