"""The generator's gRPC face: the same sampling as the stage, called directly."""

from __future__ import annotations

import grpc

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.common.grpc_runtime import InvalidArgument, abort_on_invalid
from services.common.validation import ProblemIntake, complete_sampling, validate_problems, validate_sampling
from services.generator.stage import LearnerGenerator


class GeneratorServicer(services_pb2_grpc.GeneratorServicer):
    def __init__(self, generator: LearnerGenerator, intake: ProblemIntake):
        self.generator = generator
        self.intake = intake

    def Generate(self, request: services_pb2.GenerateRequest, context: grpc.ServicerContext):
        try:
            problems = self._prepared(request.problems)
        except InvalidArgument as exc:
            abort_on_invalid(context, exc)
        samples = self.generator(problems)
        return services_pb2.GenerateResponse(trajectories=[t for per_problem in samples for t in per_problem])

    def _prepared(self, problems) -> list[records_pb2.Problem]:
        validate_problems(problems, self.intake)
        prepared = []
        for i, problem in enumerate(problems):
            copy = records_pb2.Problem()
            copy.CopyFrom(problem)
            copy.sampling.CopyFrom(complete_sampling(problem.sampling, self.intake))
            validate_sampling(copy.sampling, self.intake, f"problems[{i}].sampling")
            prepared.append(copy)
        return prepared
