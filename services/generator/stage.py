"""The generator's logic: problems in, N learner-sample trajectories per problem out."""

from __future__ import annotations

from collections.abc import Sequence

from learnerfit.v1 import records_pb2
from services.backends.base import Completion, SamplingParams, TextGenerator
from services.backends.following import FollowedModel
from services.common.ids import stable_id
from services.common.prompts import learner_conversation
from services.common.style import style_measures
from services.common.trajectories import split_steps


def sampling_params(spec: records_pb2.SamplingSpec) -> SamplingParams:
    return SamplingParams(
        n=spec.samples_per_problem,
        temperature=spec.temperature,
        top_p=spec.top_p or 1.0,
        max_new_tokens=spec.max_new_tokens,
        seed=spec.seed,
    )


class LearnerGenerator:
    """Samples every problem of a batch; problems with the same sampling spec share one back-end call.

    With a followed model, each batch runs on the newest registered checkpoint, whose
    version every trajectory records.
    """

    def __init__(self, backend: TextGenerator, checkpoint: str, follow: FollowedModel | None = None):
        self.backend = backend
        self.checkpoint = checkpoint
        self.follow = follow

    def __call__(self, problems: Sequence[records_pb2.Problem]) -> list[list[records_pb2.Trajectory]]:
        if self.follow is not None:
            self.checkpoint, self.backend = self.follow.current()
        outputs: list[list[records_pb2.Trajectory]] = [[] for _ in problems]
        groups: dict[bytes, list[int]] = {}
        for i, problem in enumerate(problems):
            groups.setdefault(problem.sampling.SerializeToString(deterministic=True), []).append(i)
        for indices in groups.values():
            spec = problems[indices[0]].sampling
            completions = self.backend.generate(
                [learner_conversation(problems[i]) for i in indices], sampling_params(spec)
            )
            for i, samples in zip(indices, completions, strict=True):
                outputs[i] = [self._trajectory(problems[i], k, c) for k, c in enumerate(samples)]
        return outputs

    def _trajectory(self, problem: records_pb2.Problem, index: int, completion: Completion) -> records_pb2.Trajectory:
        spec = problem.sampling
        origin = records_pb2.ORIGIN_LEARNER_SAMPLE
        trajectory = records_pb2.Trajectory(
            # What defines the sample, not its text: a replayed problem yields the same ids.
            id=stable_id("traj", problem.batch_id, problem.id, origin, self.backend.model_name, self.checkpoint,
                         spec.SerializeToString(deterministic=True).hex(), index),
            problem=problem,
            origin=origin,
            model=self.backend.model_name,
            checkpoint=self.checkpoint,
            text=completion.text,
            steps=split_steps(completion.text),
            sample_index=index,
            completion_tokens=completion.token_count,
            truncated=completion.truncated,
        )
        trajectory.metadata.update(style_measures(completion.text))  # the same measures Oracle outputs carry
        return trajectory
