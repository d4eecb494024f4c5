"""Registry: lists and shows the learner checkpoints of a registry directory over gRPC (paged, AIP-158); as its
index's one writer (setting `writer`, on Kubernetes), also registers what the trainer sends (Register); records
promotion decisions (the trainer's gate, an operator's promote or roll back) and announces them (SetPromotion)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from learnerfit.domain import topics
from learnerfit.domain.promotion import followed
from learnerfit.errors import FailedPrecondition, InvalidInput
from learnerfit.paths import default_registry_dir
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.runtime.app import run
from learnerfit.runtime.faults import pause_point
from learnerfit.runtime.settings import ServiceSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.v1 import records_pb2, services_pb2


class RegistrySettings(ServiceSettings):
    """Registry: lists and shows the learner checkpoints in a registry directory."""

    service_name: ClassVar[str] = "registry"
    registry_dir: Path = Field(default_factory=default_registry_dir, description="Root of the checkpoint registry.")
    index_dir: Path | None = Field(None, description="Where the SQLite index lives (default: the root). Keep it off "
                                                     "shared network volumes: SQLite's locking is not safe there.")
    writer: bool = Field(False, description="This service is the index's one writer and takes Register calls (the "
                                            "trainer then sets registry.target); else the trainer writes the index "
                                            "itself, as on the local stack.")


def build(settings: RegistrySettings, context: Context) -> Parts:
    # One writer: the trainer (local stack), or this service (a cluster, where the trainer calls Register).
    registry = CheckpointRegistry(settings.registry_dir, writer=settings.writer, index_dir=settings.index_dir)
    # Announced again at start, the followed checkpoint and the last decided one: a registry killed between recording
    # a decision (a roll-back too) and announcing it must not leave the learner services where they were.
    checkpoints = registry.list()
    decided = [c for c in checkpoints if c.promotion.HasField("decided_at")]
    again = {c.version: c for c in (followed(checkpoints),
                                    max(decided, key=lambda c: c.promotion.decided_at.ToNanoseconds(), default=None))
             if c is not None}
    if again:
        context.bus.publish([(topics.CHECKPOINTS, c) for c in again.values()])

    def register(request: services_pb2.RegisterRequest):
        if not settings.writer:
            raise FailedPrecondition("this registry is read-only: its trainer writes the index itself (setting "
                                     "writer)")
        return registry.register_incoming(request.source, base_model=request.base_model, kind=request.kind,
                                          example_ids=list(request.example_ids), policy=request.policy,
                                          eval_results=dict(request.eval), training=request.training,
                                          promotion=request.promotion)

    def set_promotion(request: services_pb2.SetPromotionRequest):
        if request.promotion.state == records_pb2.PROMOTION_STATE_UNSPECIFIED:
            raise InvalidInput("promotion.state", "say what the checkpoint becomes: pending, promoted, not promoted "
                                                  "or rolled back")
        checkpoint = registry.set_promotion(request.version, request.promotion)
        pause_point("registry.recorded")  # a fault trial kills the registry here: recorded, not yet announced
        context.bus.publish([(topics.CHECKPOINTS, checkpoint)])  # every learner service hears it
        return checkpoint

    def list_checkpoints(request: services_pb2.ListCheckpointsRequest) -> services_pb2.ListCheckpointsResponse:
        checkpoints, next_token = registry.page(request.page_size, request.page_token)
        return services_pb2.ListCheckpointsResponse(checkpoints=checkpoints, next_page_token=next_token)

    return Parts(rpcs={"ListCheckpoints": list_checkpoints, "Register": register, "SetPromotion": set_promotion,
                       "GetCheckpoint": lambda request: registry.get(request.version)})


SPEC = ServiceSpec(name="registry", settings=RegistrySettings,
                   api=services_pb2.DESCRIPTOR.services_by_name["Registry"], build=build,
                   publishes=[topics.CHECKPOINTS])

if __name__ == "__main__":
    run(SPEC)
