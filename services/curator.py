"""Curator: per problem, picks the training example from its scored candidates by the batch's policy."""

from __future__ import annotations

from typing import ClassVar

from learnerfit.domain import topics
from learnerfit.domain.curation.curator import CurationSettings, Curator
from learnerfit.domain.intake import IntakeLimits, record_check, validate_trajectories
from learnerfit.runtime.app import run
from learnerfit.runtime.settings import ServiceSettings, StageSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.runtime.stage import StageLogic, StageSpec
from learnerfit.v1 import records_pb2, services_pb2


class CuratorSettings(ServiceSettings):
    """Curator: per problem, picks the training example from its scored candidates by the batch's policy."""

    service_name: ClassVar[str] = "curator"
    curation: CurationSettings = CurationSettings()
    intake: IntakeLimits = IntakeLimits()
    stage: StageSettings = StageSettings(max_batch=64)


def build(settings: CuratorSettings, context: Context) -> Parts:
    curator = Curator(settings.curation)

    def curate(request: services_pb2.CurateRequest) -> services_pb2.CurateResponse:
        validate_trajectories(request.trajectories, settings.intake)
        decided = curator.curate(request.trajectories, request.policy)
        return services_pb2.CurateResponse(decisions=[d for d, _ in decided],
                                           examples=[e for _, e in decided if e is not None])

    return Parts(rpcs={"Curate": curate}, fold=curator.remember,
                 stage=StageLogic(curator, held=curator, tick=curator.tick, check=record_check(settings.intake)))


SPEC = ServiceSpec(
    name="curator", settings=CuratorSettings, api=services_pb2.DESCRIPTOR.services_by_name["Curator"], build=build,
    # Rejected Oracle outputs are read too: they count as arrived, so a problem is not left waiting for them.
    stage=StageSpec(consumes=[topics.SCORED, topics.ORACLE_REJECTED], input_type=records_pb2.Trajectory,
                    produces={records_pb2.CurationDecision: topics.DECISIONS,
                              records_pb2.CuratedExample: topics.CURATED},
                    publish_last=[records_pb2.CurationDecision]),
    # Which problems are decided: folded before the first candidate is read, so none is decided twice.
    follows={topics.DECISIONS: records_pb2.CurationDecision},
)

if __name__ == "__main__":
    run(SPEC)
