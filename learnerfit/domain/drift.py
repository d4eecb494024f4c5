"""The drift scorer's logic: the learner's adaptation cost of each trajectory.

Perplexity is measured on the solution tokens only, with the learner's own sampling
conversation as context (the prompt is not scored), so a learner sample and an
Oracle rewrite of the same problem are compared on equal terms.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from learnerfit.domain.inference import LearnerSource, LogProbScorer, SolutionLogProbs
from learnerfit.domain.prompts import learner_conversation
from learnerfit.domain.records import copied
from learnerfit.v1 import records_pb2

SEGMENTS = 4  # the paper's segment analysis: perplexity of each quarter of the solution
# The rank-surprisal ratio as Yang et al. (arXiv 2601.14249) compute it (their rsr_cal.py): token ranks clipped at
# 100, and per trajectory the sum of clipped ranks over the sum of token NLLs (a surprisal-weighted mean of the
# token-wise ratios); LOWER is better data for the learner. Over a set, mean clipped rank over mean NLL.
RSR_RANK_CLIP = 100
_EPS = 1e-12


def set_rsr(scores: Sequence[records_pb2.Scores]) -> float | None:
    """A set of trajectories' RSR: the mean of their mean clipped ranks over the mean of their mean NLLs (the
    published dataset-level aggregate, which a near-zero NLL on one trace cannot blow up)."""
    ranked = [(s.mean_token_rank, math.log(s.ppl)) for s in scores if s.HasField("mean_token_rank") and s.HasField("ppl")]
    if not ranked:
        return None
    return sum(r for r, _ in ranked) / len(ranked) / max(sum(n for _, n in ranked) / len(ranked), _EPS)


def perplexity(logprobs: Sequence[float]) -> float:
    return math.exp(-sum(logprobs) / len(logprobs))


def drift_scores(scored: SolutionLogProbs, top_tokens: int) -> records_pb2.Scores:
    """ppl, segment ppl, top tokens by summed loss, token count, and (where the back end ranks tokens) the mean
    token rank and the rank-surprisal ratio, from per-token log-probs."""
    scores = records_pb2.Scores(token_count=len(scored.logprobs))
    if not scored.logprobs:
        return scores  # an empty solution has no perplexity; the field stays unset
    scores.ppl = perplexity(scored.logprobs)
    if scored.ranks:
        clipped = [min(rank, RSR_RANK_CLIP) for rank in scored.ranks]
        scores.mean_token_rank = sum(clipped) / len(clipped)
        # A trace the learner predicts with near certainty teaches it little: its RSR is very large (worst).
        scores.rsr = sum(clipped) / max(-sum(scored.logprobs), _EPS)
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


class DriftScorer:
    """Adds ppl, segment ppl, top loss tokens and token count to each trajectory of a batch."""

    def __init__(self, learner: LearnerSource[LogProbScorer], top_tokens: int):
        self.learner = learner
        self.top_tokens = top_tokens

    def score(self, trajectories: Sequence[records_pb2.Trajectory], checkpoint: str = "") -> list[records_pb2.Trajectory]:
        """Drift under `checkpoint` (a registered version), or under the current learner when empty."""
        name, scorer = self.learner.named(checkpoint) if checkpoint else self.learner.current()
        measured = scorer.score([learner_conversation(t.problem) for t in trajectories], [t.text for t in trajectories])
        scored = []
        for trajectory, logprobs in zip(trajectories, measured, strict=True):
            copy = copied(trajectory)
            copy.scores.ClearField("segment_ppl")
            copy.scores.ClearField("top_loss_tokens")
            copy.scores.ClearField("mean_token_rank")
            copy.scores.ClearField("rsr")
            copy.scores.MergeFrom(drift_scores(logprobs, self.top_tokens))
            copy.scores.drift_checkpoint = name
            scored.append(copy)
        return scored

    def __call__(self, trajectories: Sequence[records_pb2.Trajectory]) -> list[records_pb2.Trajectory]:
        """The pipeline stage: drift under the current learner checkpoint."""
        return self.score(trajectories)
