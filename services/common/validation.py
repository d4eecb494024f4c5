"""Checks on client input, shared by every service that accepts problems. Each error names its field."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from learnerfit.v1 import records_pb2
from services.common.grpc_runtime import InvalidArgument
from services.common.settings import ServiceSettings


class ProblemIntake(ServiceSettings):
    """What a service accepts from clients (each breach is INVALID_ARGUMENT naming the field), and the
    sampling it assumes where a client leaves a field unset."""

    samples_per_problem: int = Field(4, ge=1, description="Default N: learner samples per problem.")
    temperature: float = Field(0.7, ge=0, le=2, description="Default sampling temperature (0 is greedy).")
    top_p: float = Field(1.0, gt=0, le=1, description="Default nucleus cut (1.0 keeps the full distribution).")
    max_new_tokens: int = Field(96, ge=1, description="Default cap on tokens per sample.")
    seed: int = Field(0, description="Default sampling seed.")

    max_problems_per_request: int = Field(1000, ge=1, description="Most problems in one request.")
    max_question_chars: int = Field(8000, ge=1, description="Longest question accepted, in characters.")
    max_answer_chars: int = Field(1000, ge=1, description="Longest reference answer accepted, in characters.")
    max_samples_per_problem: int = Field(64, ge=1, description="Largest N (samples per problem) accepted.")
    max_new_tokens_limit: int = Field(4096, ge=1, description="Largest max_new_tokens accepted.")


def validate_problems(problems: Sequence[records_pb2.Problem], limits: ProblemIntake, field: str = "problems") -> None:
    if not problems:
        raise InvalidArgument(field, "must contain at least one problem")
    if len(problems) > limits.max_problems_per_request:
        raise InvalidArgument(field, f"{len(problems)} problems, at most {limits.max_problems_per_request} allowed")
    for i, problem in enumerate(problems):
        validate_problem(problem, limits, f"{field}[{i}]")


def validate_problem(problem: records_pb2.Problem, limits: ProblemIntake, field: str) -> None:
    if not problem.question.strip():
        raise InvalidArgument(f"{field}.question", "must not be empty")
    if len(problem.question) > limits.max_question_chars:
        raise InvalidArgument(
            f"{field}.question", f"{len(problem.question)} characters, at most {limits.max_question_chars} allowed"
        )
    if not problem.reference_answer.strip():
        raise InvalidArgument(f"{field}.reference_answer", "must not be empty (the answer check needs it)")
    if len(problem.reference_answer) > limits.max_answer_chars:
        raise InvalidArgument(
            f"{field}.reference_answer",
            f"{len(problem.reference_answer)} characters, at most {limits.max_answer_chars} allowed",
        )


def complete_sampling(spec: records_pb2.SamplingSpec | None, intake: ProblemIntake) -> records_pb2.SamplingSpec:
    """The spec with every unset field taken from the service's defaults."""
    spec = spec if spec is not None else records_pb2.SamplingSpec()
    return records_pb2.SamplingSpec(
        samples_per_problem=spec.samples_per_problem or intake.samples_per_problem,
        temperature=spec.temperature if spec.HasField("temperature") else intake.temperature,
        top_p=spec.top_p or intake.top_p,
        max_new_tokens=spec.max_new_tokens or intake.max_new_tokens,
        seed=spec.seed if spec.HasField("seed") else intake.seed,
    )


def validate_sampling(spec: records_pb2.SamplingSpec, limits: ProblemIntake, field: str) -> None:
    """Checks a completed spec (see complete_sampling)."""
    if not 1 <= spec.samples_per_problem <= limits.max_samples_per_problem:
        raise InvalidArgument(
            f"{field}.samples_per_problem",
            f"{spec.samples_per_problem} is out of range 1..{limits.max_samples_per_problem}",
        )
    if not 0.0 <= spec.temperature <= 2.0:
        raise InvalidArgument(f"{field}.temperature", f"{spec.temperature} is out of range 0..2")
    if not 0.0 <= spec.top_p <= 1.0:
        raise InvalidArgument(f"{field}.top_p", f"{spec.top_p} is out of range 0..1")
    if not 1 <= spec.max_new_tokens <= limits.max_new_tokens_limit:
        raise InvalidArgument(
            f"{field}.max_new_tokens", f"{spec.max_new_tokens} is out of range 1..{limits.max_new_tokens_limit}"
        )


def validate_trajectories(trajectories: Sequence[records_pb2.Trajectory], limit: int, field: str = "trajectories") -> None:
    if not trajectories:
        raise InvalidArgument(field, "must contain at least one trajectory")
    if len(trajectories) > limit:
        raise InvalidArgument(field, f"{len(trajectories)} trajectories, at most {limit} allowed")
    for i, trajectory in enumerate(trajectories):
        if not trajectory.problem.id:
            raise InvalidArgument(f"{field}[{i}].problem.id", "must be set")
        if not trajectory.problem.reference_answer.strip():
            raise InvalidArgument(f"{field}[{i}].problem.reference_answer", "must not be empty")
