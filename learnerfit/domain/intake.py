"""What a service accepts from clients, and the sampling it assumes where a client leaves a field unset.

Each breach names its field: a malformed field is InvalidInput, a request over a
size limit is TooLarge, also INVALID_ARGUMENT (AIP-193), and names the setting that sets the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from google.protobuf.message import Message
from pydantic import Field, model_validator

from learnerfit.domain.inference import check_greedy
from learnerfit.errors import InvalidInput, TooLarge
from learnerfit.section import Section
from learnerfit.v1 import records_pb2


class SamplingDefaults(Section):
    """How the learner samples a problem whose request leaves a field unset."""

    samples_per_problem: int = Field(8, ge=1, description="N: learner samples per problem (the paper's 8).")
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature (0 is greedy).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus cut (1.0 keeps the full distribution).")
    max_new_tokens: int = Field(64, ge=1, description="Cap on tokens per sample (SmolLM2's answers on the easy "
                                                      "families take about 25).")
    seed: int = Field(0, description="Sampling seed.")

    @model_validator(mode="after")
    def _one_greedy_sample(self) -> SamplingDefaults:
        check_greedy(self.samples_per_problem, self.temperature, "samples_per_problem", "temperature")
        return self


class IntakeLimits(Section):
    """The largest requests a service accepts (each breach is INVALID_ARGUMENT naming the field, the limit and its
    setting)."""

    max_problems_per_request: int = Field(1000, ge=1, description="Most problems in one request.")
    max_trajectories_per_request: int = Field(4096, ge=1, description="Most trajectories in one request.")
    max_question_chars: int = Field(8000, ge=1, description="Longest question accepted, in characters.")
    max_answer_chars: int = Field(1000, ge=1, description="Longest reference answer accepted, in characters.")
    max_text_chars: int = Field(32_000, ge=1, description="Longest trajectory text (a trace) accepted, in characters.")
    max_label_chars: int = Field(256, ge=1, description="Longest short field accepted (a problem's source and ids, a "
                                                        "trajectory's ids, model and checkpoint), in characters.")
    max_samples_per_problem: int = Field(64, ge=1, description="Largest N (samples per problem) accepted.")
    max_new_tokens: int = Field(4096, ge=1, description="Largest max_new_tokens accepted.")


def _limit(field: str, count: int, what: str, limit: int, setting: str) -> TooLarge:
    return TooLarge(field, f"{count} {what}, at most {limit} allowed (setting intake.{setting})")


def validate_problems(problems: Sequence[records_pb2.Problem], limits: IntakeLimits, field: str = "problems") -> None:
    if not problems:
        raise InvalidInput(field, "must contain at least one problem")
    if len(problems) > limits.max_problems_per_request:
        raise _limit(field, len(problems), "problems", limits.max_problems_per_request, "max_problems_per_request")
    for i, problem in enumerate(problems):
        validate_problem(problem, limits, f"{field}[{i}]")


def validate_problem(problem: records_pb2.Problem, limits: IntakeLimits, field: str) -> None:
    if not problem.question.strip():
        raise InvalidInput(f"{field}.question", "must not be empty")
    if len(problem.question) > limits.max_question_chars:
        raise _limit(f"{field}.question", len(problem.question), "characters", limits.max_question_chars,
                     "max_question_chars")
    if not problem.reference_answer.strip():
        raise InvalidInput(f"{field}.reference_answer", "must not be empty (the answer check needs it)")
    if len(problem.reference_solution) > limits.max_text_chars:
        raise _limit(f"{field}.reference_solution", len(problem.reference_solution), "characters",
                     limits.max_text_chars, "max_text_chars")
    if len(problem.reference_answer) > limits.max_answer_chars:
        raise _limit(f"{field}.reference_answer", len(problem.reference_answer), "characters",
                     limits.max_answer_chars, "max_answer_chars")
    _check_labels(problem, ("id", "batch_id", "source", "curation_policy"), limits, field)


def _check_labels(message: Message, names: Sequence[str], limits: IntakeLimits, field: str) -> None:
    """Short fields stay short: an id or a source of megabytes would fail later, inside the producer."""
    for name in names:
        value = getattr(message, name)
        if len(value) > limits.max_label_chars:
            raise _limit(f"{field}.{name}", len(value), "characters", limits.max_label_chars, "max_label_chars")


def complete_sampling(spec: records_pb2.SamplingSpec | None, defaults: SamplingDefaults) -> records_pb2.SamplingSpec:
    """The spec with every unset field taken from the defaults."""
    spec = spec if spec is not None else records_pb2.SamplingSpec()
    return records_pb2.SamplingSpec(
        samples_per_problem=spec.samples_per_problem or defaults.samples_per_problem,
        temperature=spec.temperature if spec.HasField("temperature") else defaults.temperature,
        top_p=spec.top_p or defaults.top_p,
        max_new_tokens=spec.max_new_tokens or defaults.max_new_tokens,
        seed=spec.seed if spec.HasField("seed") else defaults.seed,
    )


def validate_sampling(spec: records_pb2.SamplingSpec, limits: IntakeLimits, field: str) -> None:
    """Checks a completed spec (see complete_sampling)."""
    if spec.samples_per_problem < 1:
        raise InvalidInput(f"{field}.samples_per_problem", f"{spec.samples_per_problem} is below 1")
    if spec.samples_per_problem > limits.max_samples_per_problem:
        raise _limit(f"{field}.samples_per_problem", spec.samples_per_problem, "samples",
                     limits.max_samples_per_problem, "max_samples_per_problem")
    if not 0.0 <= spec.temperature <= 2.0:
        raise InvalidInput(f"{field}.temperature", f"{spec.temperature} is out of range 0..2")
    check_greedy(spec.samples_per_problem, spec.temperature, f"{field}.samples_per_problem", f"{field}.temperature")
    if not 0.0 <= spec.top_p <= 1.0:
        raise InvalidInput(f"{field}.top_p", f"{spec.top_p} is out of range 0..1")
    if spec.max_new_tokens < 1:
        raise InvalidInput(f"{field}.max_new_tokens", f"{spec.max_new_tokens} is below 1")
    if spec.max_new_tokens > limits.max_new_tokens:
        raise _limit(f"{field}.max_new_tokens", spec.max_new_tokens, "tokens", limits.max_new_tokens,
                     "max_new_tokens")


def prepared_problems(problems: Sequence[records_pb2.Problem], limits: IntakeLimits,
                      defaults: SamplingDefaults) -> list[records_pb2.Problem]:
    """Validated copies, each with its sampling completed from the defaults."""
    validate_problems(problems, limits)
    prepared = []
    for i, problem in enumerate(problems):
        copy = records_pb2.Problem()
        copy.CopyFrom(problem)
        copy.sampling.CopyFrom(complete_sampling(problem.sampling, defaults))
        validate_sampling(copy.sampling, limits, f"problems[{i}].sampling")
        prepared.append(copy)
    return prepared


def validate_trajectories(trajectories: Sequence[records_pb2.Trajectory], limits: IntakeLimits,
                          field: str = "trajectories") -> None:
    if not trajectories:
        raise InvalidInput(field, "must contain at least one trajectory")
    if len(trajectories) > limits.max_trajectories_per_request:
        raise _limit(field, len(trajectories), "trajectories", limits.max_trajectories_per_request,
                     "max_trajectories_per_request")
    for i, trajectory in enumerate(trajectories):
        if not trajectory.problem.id:
            raise InvalidInput(f"{field}[{i}].problem.id", "must be set")
        validate_trajectory(trajectory, limits, f"{field}[{i}]")


def validate_trajectory(trajectory: records_pb2.Trajectory, limits: IntakeLimits, field: str) -> None:
    if not trajectory.problem.id:
        raise InvalidInput(f"{field}.problem.id", "must be set")
    if not trajectory.problem.reference_answer.strip():
        raise InvalidInput(f"{field}.problem.reference_answer", "must not be empty")
    if len(trajectory.text) > limits.max_text_chars:
        raise _limit(f"{field}.text", len(trajectory.text), "characters", limits.max_text_chars, "max_text_chars")
    _check_labels(trajectory, ("id", "parent_id", "model", "checkpoint"), limits, field)


def record_check(limits: IntakeLimits) -> Callable[[Message], None]:
    """The check a stage applies to every record it reads: the same limits as its RPCs, so one oversized or
    malformed record is dead-lettered on its own instead of failing (or exhausting) a whole batch."""
    def check(record: Message) -> None:
        if isinstance(record, records_pb2.Trajectory):
            validate_trajectory(record, limits, "trajectory")
            validate_problem(record.problem, limits, "trajectory.problem")
        elif isinstance(record, records_pb2.Problem):
            validate_problem(record, limits, "problem")
    return check
