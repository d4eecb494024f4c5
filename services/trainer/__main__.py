"""Runs the trainer service: python -m services.trainer --help"""

from __future__ import annotations

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.common.app import ServiceParts, run_service
from services.common.bus import Bus
from services.common.stage_runner import Stage
from services.trainer.servicer import TrainerServicer
from services.trainer.settings import TrainerSettings
from services.trainer.stage import Trainer


def build(settings: TrainerSettings, bus: Bus) -> ServiceParts:
    trainer = Trainer(settings)
    stage = Stage(
        name="trainer",
        consumes=settings.curated_topic,
        input_type=records_pb2.CuratedExample,
        process=trainer,
        routes={records_pb2.Checkpoint: settings.checkpoints_topic},
        held_ids=trainer.held_ids,
    )
    return ServiceParts(
        register=lambda server: services_pb2_grpc.add_TrainerServicer_to_server(TrainerServicer(trainer), server),
        service_names=[services_pb2.DESCRIPTOR.services_by_name["Trainer"].full_name],
        stages=[stage],
        topics=[settings.curated_topic, settings.checkpoints_topic],
    )


if __name__ == "__main__":
    run_service(TrainerSettings, build)
