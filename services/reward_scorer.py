"""Reward scorer: verifies each trajectory's final answer against the reference, and scores it with an outcome
reward model (in this process or on Triton)."""

from __future__ import annotations

from typing import ClassVar

from learnerfit.domain import topics
from learnerfit.models.answers import AnswerCheckSettings
from learnerfit.domain.intake import IntakeLimits, record_check, validate_trajectories
from learnerfit.domain.quality import RewardScorer
from learnerfit.models.factory import make_reward_model
from learnerfit.models.settings import REWARD_MINILM, RewardSettings
from learnerfit.runtime.app import run
from learnerfit.runtime.settings import ServiceSettings, StageSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.runtime.stage import StageLogic, StageSpec
from learnerfit.v1 import records_pb2, services_pb2
from trainer.reward_model import ensure_reward_model


class RewardScorerSettings(ServiceSettings):
    """Reward scorer: verifies each trajectory's final answer against the reference, and scores it with an outcome
    reward model."""

    service_name: ClassVar[str] = "reward_scorer"
    reward: RewardSettings = RewardSettings()
    answers: AnswerCheckSettings = AnswerCheckSettings()
    intake: IntakeLimits = IntakeLimits()
    stage: StageSettings = StageSettings(max_batch=64)


def build(settings: RewardScorerSettings, context: Context) -> Parts:
    if settings.reward.backend == "transformers" and settings.reward.model == REWARD_MINILM:
        ensure_reward_model(settings.cache_dir)  # built once, about a minute; `make models` does it ahead
    checker = settings.answers.checker()
    scorer = RewardScorer(checker, make_reward_model(settings.reward, settings.cache_dir))

    def score(request: services_pb2.ScoreTrajectoriesRequest) -> services_pb2.ScoreTrajectoriesResponse:
        validate_trajectories(request.trajectories, settings.intake)
        return services_pb2.ScoreTrajectoriesResponse(trajectories=scorer(request.trajectories))

    return Parts(rpcs={"ScoreTrajectories": score}, on_stop=checker.close,
                 stage=StageLogic(scorer, check=record_check(settings.intake)))


SPEC = ServiceSpec(
    name="reward_scorer", settings=RewardScorerSettings, api=services_pb2.DESCRIPTOR.services_by_name["RewardScorer"],
    build=build,
    stage=StageSpec(consumes=[topics.TRAJECTORIES], input_type=records_pb2.Trajectory,
                    produces={records_pb2.Trajectory: topics.REWARDED}),
)

if __name__ == "__main__":
    run(SPEC)
