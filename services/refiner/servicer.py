"""The refiner's gRPC face."""

from __future__ import annotations

import grpc

from learnerfit.v1 import services_pb2, services_pb2_grpc
from services.common.grpc_runtime import InvalidArgument, abort_on_invalid
from services.common.validation import validate_trajectories
from services.refiner.stage import Refiner


class RefinerServicer(services_pb2_grpc.RefinerServicer):
    def __init__(self, refiner: Refiner, max_trajectories: int):
        self.refiner = refiner
        self.max_trajectories = max_trajectories

    def Refine(self, request: services_pb2.RefineRequest, context: grpc.ServicerContext):
        try:
            if request.mode not in (services_pb2.REFINE_MODE_REFINE, services_pb2.REFINE_MODE_SYNTHESIZE):
                raise InvalidArgument("mode", "must be REFINE_MODE_REFINE or REFINE_MODE_SYNTHESIZE")
            validate_trajectories(request.trajectories, self.max_trajectories)
        except InvalidArgument as exc:
            abort_on_invalid(context, exc)
        outputs = self.refiner.refine(request.trajectories,
                                      synthesize=request.mode == services_pb2.REFINE_MODE_SYNTHESIZE)
        return services_pb2.RefineResponse(trajectories=outputs)
