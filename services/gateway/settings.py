"""Settings of the gateway service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.common import topics
from services.common.validation import ProblemIntake


class GatewaySettings(ProblemIntake):
    """Gateway: accepts batches of problems over gRPC, publishes them, reports progress and curated results."""

    service_name: ClassVar[str] = "gateway"

    default_policy: str = Field("rejection_sampling", description="Curation policy of batches that name none.")
    problems_topic: str = Field(topics.PROBLEMS, description="Topic the accepted problems go to.")
    trajectories_topic: str = Field(topics.TRAJECTORIES, description="Topic of generated trajectories (progress).")
    scored_topic: str = Field(topics.SCORED, description="Topic of scored trajectories (progress).")
    decisions_topic: str = Field(topics.DECISIONS, description="Topic of curation decisions (progress).")
    curated_topic: str = Field(topics.CURATED, description="Topic of curated examples (results).")
    oracle_rejected_topic: str = Field(topics.ORACLE_REJECTED, description="Topic of rejected Oracle outputs "
                                                                           "(progress).")
    stream_idle_s: float = Field(1.0, gt=0, description="How often a results stream re-checks a quiet batch.")
