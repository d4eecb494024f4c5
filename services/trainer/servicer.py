"""The trainer's gRPC face: train now on the examples that arrived since the last checkpoint."""

from __future__ import annotations

import grpc

from learnerfit.v1 import services_pb2, services_pb2_grpc
from services.trainer.stage import Trainer


class TrainerServicer(services_pb2_grpc.TrainerServicer):
    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def Train(self, request: services_pb2.TrainRequest, context: grpc.ServicerContext):
        checkpoint = self.trainer.train_now()
        if checkpoint is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no new curated examples to train on")
        return services_pb2.TrainResponse(checkpoint=checkpoint)
