"""Runs the generator service: python -m services.generator --help"""

from __future__ import annotations

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.backends.factory import make_text_generator
from services.backends.following import FollowedModel
from services.common.app import ServiceParts, run_service
from services.common.bus import Bus
from services.common.stage_runner import Stage
from services.generator.servicer import GeneratorServicer
from services.generator.settings import GeneratorSettings
from services.generator.stage import LearnerGenerator


def build(settings: GeneratorSettings, bus: Bus) -> ServiceParts:
    backend = make_text_generator(settings)
    follow = FollowedModel(settings.checkpoint, backend, load=lambda path: make_text_generator(
        settings.model_copy(update={"model": path})), settings=settings)
    generator = LearnerGenerator(backend, settings.checkpoint, follow)
    servicer = GeneratorServicer(generator, settings)
    stage = Stage(
        name="generator",
        consumes=settings.problems_topic,
        input_type=records_pb2.Problem,
        process=generator,
        routes={records_pb2.Trajectory: settings.trajectories_topic},
    )
    return ServiceParts(
        register=lambda server: services_pb2_grpc.add_GeneratorServicer_to_server(servicer, server),
        service_names=[services_pb2.DESCRIPTOR.services_by_name["Generator"].full_name],
        stages=[stage],
        topics=[settings.problems_topic, settings.trajectories_topic],
    )


if __name__ == "__main__":
    run_service(GeneratorSettings, build)
