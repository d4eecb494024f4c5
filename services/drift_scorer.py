"""Drift scorer: the learner's perplexity on each trajectory's solution tokens (its adaptation cost), under the
newest announced learner checkpoint, or one a request names."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from learnerfit.domain import topics
from learnerfit.domain.drift import DriftScorer
from learnerfit.domain.intake import IntakeLimits, record_check, validate_trajectories
from learnerfit.models.factory import LearnerModels, make_logprob_scorer
from learnerfit.models.following import followed_learner
from learnerfit.models.settings import LearnerSettings
from learnerfit.registry.client import RegistryAccess
from learnerfit.runtime.app import run
from learnerfit.runtime.settings import ServiceSettings, StageSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec, StageSpec
from learnerfit.v1 import records_pb2, services_pb2


class DriftScorerSettings(ServiceSettings):
    """Drift scorer: the learner's perplexity on each trajectory's solution tokens, under a learner checkpoint."""

    service_name: ClassVar[str] = "drift_scorer"
    learner: LearnerSettings = LearnerSettings()
    registry: RegistryAccess = RegistryAccess()
    top_loss_tokens: int = Field(8, ge=0, le=64, description="Tokens reported by summed loss per trajectory.")
    intake: IntakeLimits = IntakeLimits()
    stage: StageSettings = StageSettings(max_batch=64)


def build(settings: DriftScorerSettings, context: Context) -> Parts:
    models = LearnerModels(settings.learner, settings.cache_dir, make_logprob_scorer)
    learner = followed_learner(settings.learner, models, settings.registry, sync=context.caught_up)
    scorer = DriftScorer(learner, settings.top_loss_tokens)

    def score(request: services_pb2.ScoreDriftRequest) -> services_pb2.ScoreDriftResponse:
        validate_trajectories(request.trajectories, settings.intake)
        return services_pb2.ScoreDriftResponse(trajectories=scorer.score(request.trajectories, request.checkpoint))

    return Parts(rpcs={"ScoreDrift": score}, process=scorer, fold=learner.announce,
                 check=record_check(settings.intake))


SPEC = ServiceSpec(
    name="drift_scorer", settings=DriftScorerSettings, api=services_pb2.DESCRIPTOR.services_by_name["DriftScorer"],
    build=build,
    stage=StageSpec(consumes=[topics.REWARDED], input_type=records_pb2.Trajectory,
                    produces={records_pb2.Trajectory: topics.SCORED}),
    follows={topics.CHECKPOINTS: records_pb2.Checkpoint},
)

if __name__ == "__main__":
    run(SPEC)
