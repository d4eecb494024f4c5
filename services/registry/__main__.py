"""Runs the registry service: python -m services.registry --help"""

from __future__ import annotations

from learnerfit.v1 import services_pb2, services_pb2_grpc
from services.common.app import ServiceParts, run_service
from services.common.bus import Bus
from services.registry.servicer import RegistryServicer
from services.registry.settings import RegistrySettings
from services.registry.store import CheckpointRegistry


def build(settings: RegistrySettings, bus: Bus) -> ServiceParts:
    servicer = RegistryServicer(CheckpointRegistry(settings.registry_dir))
    return ServiceParts(
        register=lambda server: services_pb2_grpc.add_RegistryServicer_to_server(servicer, server),
        service_names=[services_pb2.DESCRIPTOR.services_by_name["Registry"].full_name],
    )


if __name__ == "__main__":
    run_service(RegistrySettings, build)
