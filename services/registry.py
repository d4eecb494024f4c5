"""Registry: lists and shows the learner checkpoints of a registry directory over gRPC (paged, AIP-158)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from learnerfit.paths import default_registry_dir
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.runtime.app import run
from learnerfit.runtime.settings import ServiceSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.v1 import services_pb2


class RegistrySettings(ServiceSettings):
    """Registry: lists and shows the learner checkpoints in a registry directory."""

    service_name: ClassVar[str] = "registry"
    registry_dir: Path = Field(default_factory=default_registry_dir, description="Root of the checkpoint registry.")


def build(settings: RegistrySettings, context: Context) -> Parts:
    registry = CheckpointRegistry.reader(settings.registry_dir)  # the trainer is the one writer

    def list_checkpoints(request: services_pb2.ListCheckpointsRequest) -> services_pb2.ListCheckpointsResponse:
        checkpoints, next_token = registry.page(request.page_size, request.page_token)
        return services_pb2.ListCheckpointsResponse(checkpoints=checkpoints, next_page_token=next_token)

    return Parts(rpcs={"ListCheckpoints": list_checkpoints,
                       "GetCheckpoint": lambda request: registry.get(request.version)})


SPEC = ServiceSpec(name="registry", settings=RegistrySettings,
                   api=services_pb2.DESCRIPTOR.services_by_name["Registry"], build=build)

if __name__ == "__main__":
    run(SPEC)
