"""The reward scorer's gRPC face."""

from __future__ import annotations

import grpc

from learnerfit.v1 import services_pb2, services_pb2_grpc
from services.common.grpc_runtime import InvalidArgument, abort_on_invalid
from services.common.validation import validate_trajectories
from services.reward_scorer.stage import RewardScorer


class RewardScorerServicer(services_pb2_grpc.RewardScorerServicer):
    def __init__(self, scorer: RewardScorer, max_trajectories: int):
        self.scorer = scorer
        self.max_trajectories = max_trajectories

    def ScoreTrajectories(self, request: services_pb2.ScoreTrajectoriesRequest, context: grpc.ServicerContext):
        try:
            validate_trajectories(request.trajectories, self.max_trajectories)
        except InvalidArgument as exc:
            abort_on_invalid(context, exc)
        scored = self.scorer(request.trajectories)
        return services_pb2.ScoreTrajectoriesResponse(trajectories=[t for outs in scored for t in outs])
