"""The drift scorer's logic: the learner's adaptation cost of each trajectory.

Perplexity is measured on the solution tokens only, with the learner's own sampling
conversation as context (the prompt is not scored), so a learner sample and an
Oracle rewrite of the same problem are compared on equal terms.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from learnerfit.v1 import records_pb2
from services.backends.base import LogProbScorer, SolutionLogProbs
from services.backends.following import FollowedModel
from services.common.grpc_runtime import InvalidArgument
from services.common.prompts import learner_conversation

SEGMENTS = 4  # the paper's segment analysis: perplexity of each quarter of the solution


def perplexity(logprobs: Sequence[float]) -> float:
    return math.exp(-sum(logprobs) / len(logprobs))


def drift_scores(scored: SolutionLogProbs, top_tokens: int) -> records_pb2.Scores:
    """ppl, segment ppl, top tokens by summed loss and token count, from per-token log-probs."""
    scores = records_pb2.Scores(token_count=len(scored.logprobs))
    if not scored.logprobs:
        return scores  # an empty solution has no perplexity; the field stays unset
    scores.ppl = perplexity(scored.logprobs)
    n = len(scored.logprobs)
    bounds = [round(k * n / SEGMENTS) for k in range(SEGMENTS + 1)]
    scores.segment_ppl.extend(perplexity(scored.logprobs[a:b]) for a, b in itertools.pairwise(bounds) if b > a)
    by_token: dict[str, list[float]] = {}
    for token, logprob in zip(scored.tokens, scored.logprobs, strict=True):
        entry = by_token.setdefault(token, [0.0, 0])
        entry[0] -= logprob
        entry[1] += 1
    ranked = sorted(by_token.items(), key=lambda kv: kv[1][0], reverse=True)[:top_tokens]
    scores.top_loss_tokens.extend(records_pb2.TokenLoss(token=t, total_loss=loss, count=c) for t, (loss, c) in ranked)
    return scores


class LearnerCheckpoints:
    """The learner checkpoints drift is measured under: the current one, plus others loaded on request (LRU)."""

    def __init__(self, current_name: str, current: LogProbScorer, load: Callable[[str], LogProbScorer],
                 checkpoints_dir: Path | None, max_loaded: int, follow: FollowedModel | None = None):
        self.current_name = current_name
        self.current = current
        self._follow = follow
        self._load = load
        self._dir = checkpoints_dir
        self._max_loaded = max_loaded
        self._loaded: OrderedDict[str, LogProbScorer] = OrderedDict()

    def get(self, name: str) -> tuple[str, LogProbScorer]:
        if self._follow is not None:
            self.current_name, self.current = self._follow.current()
        if not name or name == self.current_name:
            return self.current_name, self.current
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return name, self._loaded[name]
        path = self._registered(name) or (self._dir / name if self._dir is not None and "/" not in name else None)
        if path is None or not path.is_dir():
            raise InvalidArgument("checkpoint", f"unknown learner checkpoint {name!r} (current: "
                                                f"{self.current_name!r}; others live in checkpoints_dir="
                                                f"{str(self._dir) if self._dir else 'unset'})")
        while self._loaded and len(self._loaded) >= self._max_loaded - 1:  # the current one always stays loaded
            self._loaded.popitem(last=False)
        self._loaded[name] = scorer = self._load(str(path))
        return name, scorer


    def _registered(self, name: str) -> Path | None:
        """A registered version's directory, when the scorer follows a registry."""
        registry = self._follow.registry() if self._follow is not None else None
        if registry is None:
            return None
        from services.registry.store import RegistryError

        try:
            return registry.path_of(registry.get(name))
        except (RegistryError, KeyError):
            return None


class DriftScorer:
    """Adds ppl, segment ppl, top loss tokens and token count to each trajectory of a batch."""

    def __init__(self, checkpoints: LearnerCheckpoints, top_tokens: int):
        self.checkpoints = checkpoints
        self.top_tokens = top_tokens

    def score(self, trajectories: Sequence[records_pb2.Trajectory], checkpoint: str = "") -> list[records_pb2.Trajectory]:
        name, learner = self.checkpoints.get(checkpoint)
        measured = learner.score([learner_conversation(t.problem) for t in trajectories],
                                 [t.text for t in trajectories])
        scored = []
        for trajectory, logprobs in zip(trajectories, measured, strict=True):
            copy = records_pb2.Trajectory()
            copy.CopyFrom(trajectory)
            drift = drift_scores(logprobs, self.top_tokens)
            copy.scores.ClearField("segment_ppl")
            copy.scores.ClearField("top_loss_tokens")
            copy.scores.MergeFrom(drift)
            copy.scores.drift_checkpoint = name
            scored.append(copy)
        return scored

    def __call__(self, trajectories: Sequence[records_pb2.Trajectory]) -> list[list[records_pb2.Trajectory]]:
        """The pipeline stage: drift under the current learner checkpoint."""
        return [[t] for t in self.score(trajectories)]
