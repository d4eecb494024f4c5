"""Drift scorer: the learner's perplexity on each trajectory's solution tokens (its adaptation cost), under the
newest announced learner checkpoint, or one a request names."""

from __future__ import annotations

from typing import ClassVar

from prometheus_client import Counter, Histogram
from pydantic import Field

from learnerfit.domain import topics
from learnerfit.domain.drift import DriftScorer
from learnerfit.domain.intake import IntakeLimits, record_check, validate_trajectories
from learnerfit.domain.records import origin_name, verdict_name
from learnerfit.models.factory import LearnerModels, make_logprob_scorer
from learnerfit.models.following import followed_learner
from learnerfit.models.settings import LearnerSettings
from learnerfit.registry.client import RegistryAccess
from learnerfit.runtime.app import run
from learnerfit.runtime.settings import ServiceSettings, StageSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.runtime.stage import StageLogic, StageSpec
from learnerfit.v1 import records_pb2, services_pb2

# What an operator watches on a dashboard: the pipeline's last scorer sees every trajectory with all its scores.
SCORED_PPL = Histogram("learnerfit_scored_ppl", "Learner perplexity on scored solutions.", ["origin"],
                       buckets=(1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 50.0))
SCORED_REWARD = Histogram("learnerfit_scored_reward", "Reward model score of scored solutions.", ["origin"],
                          buckets=(-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0))
LEARNER_VERDICTS = Counter("learnerfit_learner_samples_total",
                           "Learner samples scored, by the checkpoint that wrote them and their verdict.",
                           ["checkpoint", "verdict"])


def observe(trajectories):
    for t in trajectories:
        origin = origin_name(t.origin)
        if t.scores.HasField("ppl"):
            SCORED_PPL.labels(origin).observe(t.scores.ppl)
        if t.scores.HasField("reward"):
            SCORED_REWARD.labels(origin).observe(t.scores.reward)
        if t.origin == records_pb2.ORIGIN_LEARNER_SAMPLE:
            LEARNER_VERDICTS.labels(t.checkpoint or "base", verdict_name(t.scores.verdict)).inc()
    return trajectories


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

    return Parts(rpcs={"ScoreDrift": score}, fold=learner.announce,
                 stage=StageLogic(lambda batch: observe(scorer(batch)), check=record_check(settings.intake)))


SPEC = ServiceSpec(
    name="drift_scorer", settings=DriftScorerSettings, api=services_pb2.DESCRIPTOR.services_by_name["DriftScorer"],
    build=build,
    stage=StageSpec(consumes=[topics.REWARDED], input_type=records_pb2.Trajectory,
                    produces={records_pb2.Trajectory: topics.SCORED}),
    follows={topics.CHECKPOINTS: records_pb2.Checkpoint},
)

if __name__ == "__main__":
    run(SPEC)
