"""Runs the reward scorer service: python -m services.reward_scorer --help"""

from __future__ import annotations

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.backends.factory import make_reward_model
from services.common.app import ServiceParts, run_service
from services.common.bus import Bus
from services.common.stage_runner import Stage
from services.reward_scorer.answers import AnswerChecker
from services.reward_scorer.servicer import RewardScorerServicer
from services.reward_scorer.settings import RewardScorerSettings
from services.reward_scorer.stage import RewardScorer


def build(settings: RewardScorerSettings, bus: Bus) -> ServiceParts:
    checker = AnswerChecker(timeout_s=settings.check_timeout_s)
    checker.warm_up()
    scorer = RewardScorer(checker, make_reward_model(settings))
    servicer = RewardScorerServicer(scorer, settings.max_trajectories_per_request)
    stage = Stage(
        name="reward_scorer",
        consumes=settings.trajectories_topic,
        input_type=records_pb2.Trajectory,
        process=scorer,
        routes={records_pb2.Trajectory: settings.rewarded_topic},
    )
    return ServiceParts(
        register=lambda server: services_pb2_grpc.add_RewardScorerServicer_to_server(servicer, server),
        service_names=[services_pb2.DESCRIPTOR.services_by_name["RewardScorer"].full_name],
        stages=[stage],
        topics=[settings.trajectories_topic, settings.rewarded_topic],
        on_stop=checker.close,
    )


if __name__ == "__main__":
    run_service(RewardScorerSettings, build)
