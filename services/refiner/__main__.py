"""Runs the refiner service: python -m services.refiner --help"""

from __future__ import annotations

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.common.app import ServiceParts, run_service
from services.common.bus import Bus
from services.common.stage_runner import Stage
from services.oracle.service import oracle_writer, rejected_router
from services.refiner.servicer import RefinerServicer
from services.refiner.settings import RefinerSettings
from services.refiner.stage import Refiner


def build(settings: RefinerSettings, bus: Bus) -> ServiceParts:
    writer, checker = oracle_writer("refiner", settings)
    refiner = Refiner(writer)
    servicer = RefinerServicer(refiner, settings.max_trajectories_per_request)
    stage = Stage(
        name="refiner",
        consumes=settings.scored_topic,
        input_type=records_pb2.Trajectory,
        process=refiner,
        routes={records_pb2.Trajectory: settings.trajectories_topic},
        router=rejected_router(settings.rejected_topic),
    )
    return ServiceParts(
        register=lambda server: services_pb2_grpc.add_RefinerServicer_to_server(servicer, server),
        service_names=[services_pb2.DESCRIPTOR.services_by_name["Refiner"].full_name],
        stages=[stage],
        topics=[settings.scored_topic, settings.trajectories_topic, settings.rejected_topic],
        on_stop=checker.close,
    )


if __name__ == "__main__":
    run_service(RefinerSettings, build)
