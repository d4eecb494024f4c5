"""Settings of the drift scorer service."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from services.backends.following import FollowSettings
from services.backends.settings import ModelSettings
from services.common import topics
from services.common.settings import StageSettings


class DriftScorerSettings(StageSettings, ModelSettings, FollowSettings):
    """Drift scorer: the learner's perplexity on each trajectory's solution tokens, under a learner checkpoint."""

    service_name: ClassVar[str] = "drift_scorer"

    checkpoint: str = Field("base", description="Name of the learner checkpoint `model` holds (the current one).")
    checkpoints_dir: Path | None = Field(
        None, description="Directory of other learner checkpoints, one sub-directory per name, for requests that "
                          "name one.")
    max_loaded_checkpoints: int = Field(2, ge=1, le=16, description="Checkpoints kept in memory at once.")
    top_loss_tokens: int = Field(8, ge=0, le=64, description="Tokens reported by summed loss per trajectory.")
    max_trajectories_per_request: int = Field(4096, ge=1, description="Most trajectories in one gRPC request.")
    rewarded_topic: str = Field(topics.REWARDED, description="Topic the trajectories are read from.")
    scored_topic: str = Field(topics.SCORED, description="Topic the fully scored trajectories go to.")
    max_batch: int = Field(64, ge=1, le=4096, description="Most trajectories scored in one forward batch set.")
