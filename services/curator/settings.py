"""Settings of the curator service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.common import topics
from services.common.settings import StageSettings


class CuratorSettings(StageSettings):
    """Curator: per problem, picks the training example from its scored candidates by the batch's policy."""

    service_name: ClassVar[str] = "curator"

    problem_wait_s: float = Field(
        600.0, gt=0, description="Longest wait for a problem's missing candidates before deciding with what arrived."
    )
    max_trajectories_per_request: int = Field(4096, ge=1, description="Most trajectories in one gRPC request.")
    utility_weight: float = Field(1.0, ge=0, description="utility policy: reward - weight * ln(ppl).")
    ppl_ceiling_factor: float = Field(1.5, gt=0, description="utility policy: skip candidates whose ppl exceeds this "
                                                               "times the median ppl of the batch's learner samples.")
    scored_topic: str = Field(topics.SCORED, description="Topic the scored trajectories are read from.")
    oracle_rejected_topic: str = Field(topics.ORACLE_REJECTED, description="Topic of rejected Oracle outputs, "
                                                                           "counted as arrived (not candidates).")
    decisions_topic: str = Field(topics.DECISIONS, description="Topic of per-problem decisions (curated or not).")
    curated_topic: str = Field(topics.CURATED, description="Topic the curated training examples go to.")
    max_batch: int = Field(64, ge=1, le=4096, description="Most trajectories taken per poll.")
