"""The generator's logic: problems in, N learner-sample trajectories per problem out."""

from __future__ import annotations

from collections.abc import Sequence

from learnerfit.domain.ids import stable_id
from learnerfit.domain.inference import Completion, LearnerSource, SamplingParams, TextGenerator
from learnerfit.domain.prompts import learner_conversation
from learnerfit.domain.records import split_steps
from learnerfit.domain.style import style_measures
from learnerfit.v1 import records_pb2


def sampling_params(spec: records_pb2.SamplingSpec) -> SamplingParams:
    return SamplingParams(n=spec.samples_per_problem, temperature=spec.temperature, top_p=spec.top_p or 1.0,
                          max_new_tokens=spec.max_new_tokens, seed=spec.seed)


class LearnerGenerator:
    """Samples every problem of a batch; problems with the same sampling spec share one back-end call.

    Each batch runs on the learner's current checkpoint, whose version every trajectory records.
    """

    def __init__(self, learner: LearnerSource[TextGenerator]):
        self.learner = learner

    def __call__(self, problems: Sequence[records_pb2.Problem]) -> list[records_pb2.Trajectory]:
        checkpoint, backend = self.learner.current()
        groups: dict[bytes, list[records_pb2.Problem]] = {}
        for problem in problems:
            groups.setdefault(problem.sampling.SerializeToString(deterministic=True), []).append(problem)
        outputs = []
        for group in groups.values():
            completions = backend.generate([learner_conversation(p) for p in group], sampling_params(group[0].sampling))
            for problem, samples in zip(group, completions, strict=True):
                outputs += [_trajectory(problem, k, c, backend.model_name, checkpoint) for k, c in enumerate(samples)]
        return outputs


def _trajectory(problem: records_pb2.Problem, index: int, completion: Completion, model: str,
                checkpoint: str) -> records_pb2.Trajectory:
    origin = records_pb2.ORIGIN_LEARNER_SAMPLE
    return records_pb2.Trajectory(
        # What defines the sample, not its text, and not the checkpoint either: a problem replayed after the learner
        # moved to a newer checkpoint yields the same ids, dropped downstream, not a second set of N samples.
        id=stable_id("traj", problem.batch_id, problem.id, origin, model,
                     problem.sampling.SerializeToString(deterministic=True).hex(), index),
        problem=problem, origin=origin, model=model, checkpoint=checkpoint, text=completion.text,
        steps=split_steps(completion.text), sample_index=index, completion_tokens=completion.token_count,
        truncated=completion.truncated,
        style=style_measures(completion.text),  # the same measures Oracle outputs carry
    )
