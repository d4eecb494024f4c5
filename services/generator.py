"""Learner generator: samples N solutions per problem from the learner and publishes them as trajectories.

It follows the learner: each batch runs on the newest checkpoint announced on `checkpoints`.
"""

from __future__ import annotations

from typing import ClassVar

from learnerfit.domain import topics
from learnerfit.domain.generation import LearnerGenerator
from learnerfit.domain.intake import IntakeLimits, SamplingDefaults, prepared_problems, record_check
from learnerfit.models.factory import LearnerModels, make_text_generator
from learnerfit.models.following import followed_learner
from learnerfit.models.settings import LearnerSettings
from learnerfit.registry.client import RegistryAccess
from learnerfit.runtime.app import run
from learnerfit.runtime.settings import ServiceSettings, StageSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.runtime.stage import StageLogic, StageSpec
from learnerfit.v1 import records_pb2, services_pb2


class GeneratorSettings(ServiceSettings):
    """Learner generator: samples N solutions per problem from the learner and publishes them as trajectories."""

    service_name: ClassVar[str] = "generator"
    learner: LearnerSettings = LearnerSettings()
    registry: RegistryAccess = RegistryAccess()
    sampling: SamplingDefaults = SamplingDefaults()
    intake: IntakeLimits = IntakeLimits()
    stage: StageSettings = StageSettings(max_batch=8, max_wait_s=0.5)


def build(settings: GeneratorSettings, context: Context) -> Parts:
    models = LearnerModels(settings.learner, settings.cache_dir, make_text_generator)
    learner = followed_learner(settings.learner, models, settings.registry, sync=context.caught_up)
    generator = LearnerGenerator(learner)

    def generate(request: services_pb2.GenerateRequest) -> services_pb2.GenerateResponse:
        problems = prepared_problems(request.problems, settings.intake, settings.sampling)
        return services_pb2.GenerateResponse(trajectories=generator(problems))

    return Parts(rpcs={"Generate": generate}, fold=learner.announce,
                 stage=StageLogic(generator, check=record_check(settings.intake)))


SPEC = ServiceSpec(
    name="generator", settings=GeneratorSettings, api=services_pb2.DESCRIPTOR.services_by_name["Generator"],
    build=build,
    stage=StageSpec(consumes=[topics.PROBLEMS], input_type=records_pb2.Problem,
                    produces={records_pb2.Trajectory: topics.TRAJECTORIES}),
    follows={topics.CHECKPOINTS: records_pb2.Checkpoint},
)

if __name__ == "__main__":
    run(SPEC)
