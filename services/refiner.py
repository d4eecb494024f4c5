"""Refiner: Oracle-refined (minimal repair of learner traces) and Oracle-synthesized (from scratch) traces, for
the batches that ask for them (the paper's two Oracle baselines)."""

from __future__ import annotations

from typing import ClassVar

from learnerfit.domain import topics
from learnerfit.models.answers import AnswerCheckSettings
from learnerfit.domain.intake import IntakeLimits, record_check, validate_trajectories
from learnerfit.domain.oracle.guardrails import GuardrailSettings
from learnerfit.domain.oracle.refine import Refiner
from learnerfit.domain.oracle.selection import rejected_route
from learnerfit.domain.oracle.spend import SPEND_TOPICS
from learnerfit.models.factory import make_oracle_writer
from learnerfit.models.settings import OracleSettings
from learnerfit.runtime.app import run
from learnerfit.runtime.metrics import oracle_outcomes
from learnerfit.runtime.ratelimit import RATE_LEASES, RateLimitSettings, shared_rate_limit
from learnerfit.runtime.settings import ServiceSettings, StageSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.runtime.stage import StageLogic, StageSpec
from learnerfit.v1 import records_pb2, services_pb2


class RefinerSettings(ServiceSettings):
    """Refiner: Oracle-refined (minimal repair of learner traces) and Oracle-synthesized (from scratch) traces, for
    the batches that ask for them."""

    service_name: ClassVar[str] = "refiner"
    oracle: OracleSettings = OracleSettings()
    oracle_limits: RateLimitSettings = RateLimitSettings()  # the provider's, shared by every Oracle replica
    guardrails: GuardrailSettings = GuardrailSettings()
    answers: AnswerCheckSettings = AnswerCheckSettings()
    intake: IntakeLimits = IntakeLimits(max_trajectories_per_request=256)
    stage: StageSettings = StageSettings(max_batch=8)


def build(settings: RefinerSettings, context: Context) -> Parts:
    checker = settings.answers.checker()
    # One limit per endpoint and model, whichever Oracle service (and replica) asks.
    admit, limit_loops = shared_rate_limit(context.bus, settings.oracle_limits,
                                           f"{settings.oracle.endpoint} {settings.oracle.model}")
    writer = make_oracle_writer(settings.oracle, checker, settings.guardrails.min_overlap, settings.cache_dir,
                                oracle_outcomes(SPEC.name), admit)
    refiner = Refiner(writer)

    def refine(request: services_pb2.RefineRequest) -> services_pb2.RefineResponse:
        validate_trajectories(request.trajectories, settings.intake)
        return services_pb2.RefineResponse(trajectories=refiner.refine(request.trajectories, request.mode))

    return Parts(rpcs={"Refine": refine}, on_stop=checker.close, fold=writer.spend.fold, background=limit_loops,
                 stage=StageLogic(refiner, route=rejected_route, check=record_check(settings.intake)))


SPEC = ServiceSpec(
    name="refiner", settings=RefinerSettings, api=services_pb2.DESCRIPTOR.services_by_name["Refiner"], build=build,
    stage=StageSpec(consumes=[topics.SCORED], input_type=records_pb2.Trajectory,
                    produces={records_pb2.Trajectory: topics.TRAJECTORIES}, also_produces=[topics.ORACLE_REJECTED]),
    follows=SPEND_TOPICS,  # what every Oracle output of a batch spent, whoever wrote it: its budget, no paying twice
    shares=[RATE_LEASES],  # the Oracle's rate limits, agreed among the replicas
)

if __name__ == "__main__":
    run(SPEC)
