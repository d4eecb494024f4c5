"""Style aligner: the Oracle repairs learner traces in the learner's own style (rewrite, the paper's Style-Aligned
Refinement), or fixes the first wrong step of a failed trace and lets the learner finish it (repair)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from learnerfit.domain import topics
from learnerfit.models.answers import AnswerCheckSettings
from learnerfit.domain.inference import SamplingParams
from learnerfit.domain.intake import IntakeLimits, record_check, validate_trajectories
from learnerfit.domain.oracle.align import StyleAligner
from learnerfit.domain.oracle.guardrails import GuardrailSettings
from learnerfit.domain.oracle.selection import rejected_route
from learnerfit.domain.oracle.spend import SPEND_TOPICS
from learnerfit.models.factory import make_oracle_writer, make_text_generator
from learnerfit.models.settings import LearnerSettings, OracleSettings
from learnerfit.runtime.app import run
from learnerfit.runtime.metrics import oracle_outcomes
from learnerfit.runtime.ratelimit import RATE_LEASES, RateLimitSettings, shared_rate_limit
from learnerfit.runtime.settings import ServiceSettings, StageSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.runtime.stage import StageLogic, StageSpec
from learnerfit.v1 import records_pb2, services_pb2


class StyleAlignerSettings(ServiceSettings):
    """Style aligner: the Oracle repairs learner traces in the learner's own style (rewrite), or fixes the first
    wrong step of a failed trace and lets the learner finish it (repair), for the batches that ask for them."""

    service_name: ClassVar[str] = "style_aligner"
    oracle: OracleSettings = OracleSettings()
    oracle_limits: RateLimitSettings = RateLimitSettings()  # the provider's, shared by every Oracle replica
    learner: LearnerSettings = LearnerSettings()
    style_window: int = Field(64, ge=1, le=100_000, description="Recent learner samples the style card is made of.")
    repair_max_new_tokens: int = Field(96, ge=1, le=8192, description="repair: longest learner continuation.")
    guardrails: GuardrailSettings = GuardrailSettings()
    answers: AnswerCheckSettings = AnswerCheckSettings()
    intake: IntakeLimits = IntakeLimits(max_trajectories_per_request=256)
    stage: StageSettings = StageSettings(max_batch=8)


def build(settings: StyleAlignerSettings, context: Context) -> Parts:
    checker = settings.answers.checker()
    # One limit per endpoint and model, whichever Oracle service (and replica) asks.
    admit, limit_loops = shared_rate_limit(context.bus, settings.oracle_limits,
                                           f"{settings.oracle.endpoint} {settings.oracle.model}")
    writer = make_oracle_writer(settings.oracle, checker, settings.guardrails.min_overlap, settings.cache_dir,
                                oracle_outcomes(SPEC.name), admit)
    # repair: the learner continues the repaired prefix greedily, its most likely way to finish.
    learner = make_text_generator(settings.learner, settings.cache_dir)
    aligner = StyleAligner(writer, learner, SamplingParams(n=1, temperature=0.0,
                                                           max_new_tokens=settings.repair_max_new_tokens),
                           settings.style_window)

    def align(request: services_pb2.AlignRequest) -> services_pb2.AlignResponse:
        validate_trajectories(request.trajectories, settings.intake)
        return services_pb2.AlignResponse(trajectories=aligner.align(request.trajectories, request.mode))

    return Parts(rpcs={"Align": align}, on_stop=checker.close, fold=writer.spend.fold, background=limit_loops,
                 stage=StageLogic(aligner, route=rejected_route, check=record_check(settings.intake)))


SPEC = ServiceSpec(
    name="style_aligner", settings=StyleAlignerSettings,
    api=services_pb2.DESCRIPTOR.services_by_name["StyleAligner"], build=build,
    stage=StageSpec(consumes=[topics.SCORED], input_type=records_pb2.Trajectory,
                    produces={records_pb2.Trajectory: topics.TRAJECTORIES}, also_produces=[topics.ORACLE_REJECTED]),
    follows=SPEND_TOPICS,  # what every Oracle output of a batch spent, whoever wrote it: its budget, no paying twice
    shares=[RATE_LEASES],  # the Oracle's rate limits, agreed among the replicas
)

if __name__ == "__main__":
    run(SPEC)
