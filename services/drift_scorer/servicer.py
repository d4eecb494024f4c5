"""The drift scorer's gRPC face: the same code path as the stage, with a checkpoint chosen per request."""

from __future__ import annotations

import grpc

from learnerfit.v1 import services_pb2, services_pb2_grpc
from services.common.grpc_runtime import InvalidArgument, abort_on_invalid
from services.common.validation import validate_trajectories
from services.drift_scorer.stage import DriftScorer


class DriftScorerServicer(services_pb2_grpc.DriftScorerServicer):
    def __init__(self, scorer: DriftScorer, max_trajectories: int):
        self.scorer = scorer
        self.max_trajectories = max_trajectories

    def ScoreDrift(self, request: services_pb2.ScoreDriftRequest, context: grpc.ServicerContext):
        try:
            validate_trajectories(request.trajectories, self.max_trajectories)
            scored = self.scorer.score(request.trajectories, request.checkpoint)
        except InvalidArgument as exc:
            abort_on_invalid(context, exc)
        return services_pb2.ScoreDriftResponse(trajectories=scored)
