"""Runs the gateway service: python -m services.gateway --help"""

from __future__ import annotations

import functools

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.common.app import ServiceParts, run_service
from services.common.bus import Bus
from services.gateway.follow import follow_topics
from services.gateway.ledger import BatchLedger
from services.gateway.servicer import GatewayServicer
from services.gateway.settings import GatewaySettings


def build(settings: GatewaySettings, bus: Bus) -> ServiceParts:
    ledger = BatchLedger()
    servicer = GatewayServicer(settings, bus, ledger)
    followed = {
        settings.problems_topic: records_pb2.Problem,
        settings.trajectories_topic: records_pb2.Trajectory,
        settings.scored_topic: records_pb2.Trajectory,
        settings.decisions_topic: records_pb2.CurationDecision,
        settings.curated_topic: records_pb2.CuratedExample,
        settings.oracle_rejected_topic: records_pb2.Trajectory,
    }
    return ServiceParts(
        register=lambda server: services_pb2_grpc.add_GatewayServicer_to_server(servicer, server),
        service_names=[services_pb2.DESCRIPTOR.services_by_name["Gateway"].full_name],
        topics=list(followed),
        background=[functools.partial(follow_topics, bus, followed, ledger)],
    )


if __name__ == "__main__":
    run_service(GatewaySettings, build)
