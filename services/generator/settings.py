"""Settings of the generator service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.backends.following import FollowSettings
from services.backends.settings import ModelSettings
from services.common import topics
from services.common.settings import StageSettings
from services.common.validation import ProblemIntake


class GeneratorSettings(StageSettings, ModelSettings, FollowSettings, ProblemIntake):
    """Learner generator: samples N solutions per problem from the learner and publishes them as trajectories."""

    service_name: ClassVar[str] = "generator"

    checkpoint: str = Field("base", description="Name of the base learner `model`, recorded on trajectories until a "
                                                "registered checkpoint replaces it.")
    problems_topic: str = Field(topics.PROBLEMS, description="Topic the problems are read from.")
    trajectories_topic: str = Field(topics.TRAJECTORIES, description="Topic the sampled trajectories go to.")
    max_batch: int = Field(8, ge=1, le=4096, description="Most problems sampled in one generate() pass.")
    max_wait_s: float = Field(0.5, ge=0, le=60, description="After the first problem, how long to wait for more.")
