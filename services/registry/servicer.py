"""The registry's gRPC face: list checkpoints, show one."""

from __future__ import annotations

import grpc

from learnerfit.v1 import services_pb2, services_pb2_grpc
from services.common.grpc_runtime import InvalidArgument, abort_on_invalid
from services.registry.store import CheckpointRegistry, RegistryError


class RegistryServicer(services_pb2_grpc.RegistryServicer):
    def __init__(self, registry: CheckpointRegistry):
        self.registry = registry

    def ListCheckpoints(self, request: services_pb2.ListCheckpointsRequest, context: grpc.ServicerContext):
        return services_pb2.ListCheckpointsResponse(checkpoints=self.registry.list())

    def GetCheckpoint(self, request: services_pb2.GetCheckpointRequest, context: grpc.ServicerContext):
        try:
            return self.registry.get(request.version)
        except RegistryError as exc:
            abort_on_invalid(context, InvalidArgument("version", str(exc)))
        except KeyError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc.args[0]))
