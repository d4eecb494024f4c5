"""Settings of the reward scorer service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.backends.settings import RewardModelSettings
from services.common import topics
from services.common.settings import StageSettings


class RewardScorerSettings(StageSettings, RewardModelSettings):
    """Reward scorer: verifies each trajectory's final answer against the reference, and scores it with an outcome
    reward model."""

    service_name: ClassVar[str] = "reward_scorer"

    check_timeout_s: int = Field(5, ge=1, le=120, description="Time limit of one answer check (parse + verify).")
    max_trajectories_per_request: int = Field(4096, ge=1, description="Most trajectories in one gRPC request.")
    trajectories_topic: str = Field(topics.TRAJECTORIES, description="Topic the trajectories are read from.")
    rewarded_topic: str = Field(topics.REWARDED, description="Topic the quality-scored trajectories go to.")
    max_batch: int = Field(64, ge=1, le=4096, description="Most trajectories checked in one worker call.")
