"""Runs the curator service: python -m services.curator --help"""

from __future__ import annotations

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.common.app import ServiceParts, run_service
from services.common.bus import Bus
from services.common.stage_runner import Stage
from services.curator.servicer import CuratorServicer
from services.curator.settings import CuratorSettings
from services.curator.stage import Curator


def build(settings: CuratorSettings, bus: Bus) -> ServiceParts:
    curator = Curator(wait_s=settings.problem_wait_s, utility_weight=settings.utility_weight,
                      ppl_ceiling_factor=settings.ppl_ceiling_factor)
    servicer = CuratorServicer(settings.max_trajectories_per_request)
    stage = Stage(
        name="curator",
        consumes=[settings.scored_topic, settings.oracle_rejected_topic],
        input_type=records_pb2.Trajectory,
        process=curator,
        routes={
            records_pb2.CurationDecision: settings.decisions_topic,
            records_pb2.CuratedExample: settings.curated_topic,
        },
        held_ids=curator.held_ids,
        on_tick=curator.tick,
    )
    return ServiceParts(
        register=lambda server: services_pb2_grpc.add_CuratorServicer_to_server(servicer, server),
        service_names=[services_pb2.DESCRIPTOR.services_by_name["Curator"].full_name],
        stages=[stage],
        topics=[settings.scored_topic, settings.oracle_rejected_topic, settings.decisions_topic,
                settings.curated_topic],
    )


if __name__ == "__main__":
    run_service(CuratorSettings, build)
