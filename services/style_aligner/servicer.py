"""The style aligner's gRPC face."""

from __future__ import annotations

import grpc

from learnerfit.v1 import services_pb2, services_pb2_grpc
from services.common.grpc_runtime import InvalidArgument, abort_on_invalid
from services.common.validation import validate_trajectories
from services.style_aligner.stage import StyleAligner


class StyleAlignerServicer(services_pb2_grpc.StyleAlignerServicer):
    def __init__(self, aligner: StyleAligner, max_trajectories: int):
        self.aligner = aligner
        self.max_trajectories = max_trajectories

    def Align(self, request: services_pb2.AlignRequest, context: grpc.ServicerContext):
        try:
            if request.mode not in (services_pb2.ALIGN_MODE_REWRITE, services_pb2.ALIGN_MODE_REPAIR):
                raise InvalidArgument("mode", "must be ALIGN_MODE_REWRITE or ALIGN_MODE_REPAIR")
            validate_trajectories(request.trajectories, self.max_trajectories)
        except InvalidArgument as exc:
            abort_on_invalid(context, exc)
        outputs = self.aligner.align(request.trajectories, repair=request.mode == services_pb2.ALIGN_MODE_REPAIR)
        return services_pb2.AlignResponse(trajectories=outputs)
