"""Curation policies: given one problem's scored candidates, which one (if any) becomes training data.

Candidates reach a policy already de-duplicated (near-identical texts collapsed) and
never include Oracle outputs a guardrail rejected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from learnerfit.domain.records import origin_name
from learnerfit.errors import InvalidInput
from learnerfit.v1 import records_pb2

LEARNER, REFINED, SYNTHESIZED, ALIGNED = (records_pb2.ORIGIN_LEARNER_SAMPLE, records_pb2.ORIGIN_ORACLE_REFINED,
                                          records_pb2.ORIGIN_ORACLE_SYNTHESIZED, records_pb2.ORIGIN_STYLE_ALIGNED)


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may know beyond the problem's candidates (the weights come from CurationSettings, their home:
    CurationSettings.policy_context)."""

    utility_weight: float      # utility = reward - weight * ln(cost)
    ppl_ceiling_factor: float  # candidates above factor x learner_ppl_median are too costly to absorb
    utility_cost: str          # the cost: the learner's perplexity ("ppl"), or the rank-surprisal ratio ("rsr")
    # Median perplexity of the learner's own samples seen so far in the same batch (None: none seen yet).
    learner_ppl_median: float | None = None
    # Every policy: a correct candidate is kept only if at least this share of its checked steps hold (0: off).
    min_step_accuracy: float = 0.0


@dataclass(frozen=True)
class Choice:
    trajectory: records_pb2.Trajectory | None
    reason: str
    utility: float | None = None


def _correct(candidates: Sequence[records_pb2.Trajectory], context: PolicyContext,
             origin: int | None = None) -> list[records_pb2.Trajectory]:
    """Correct candidates (of `origin`), first by origin and sample; with min_step_accuracy set, only those whose
    steps hold well enough (a trace with no step the check can read cannot show it, and is left out too)."""
    return sorted((t for t in candidates if t.scores.verdict == records_pb2.VERDICT_CORRECT
                   and (origin is None or t.origin == origin) and _steps_hold(t, context)),
                  key=lambda t: (t.origin, t.sample_index, t.id))


def _steps_hold(trajectory: records_pb2.Trajectory, context: PolicyContext) -> bool:
    if not context.min_step_accuracy:
        return True
    scores = trajectory.scores
    return scores.HasField("step_accuracy") and scores.step_accuracy >= context.min_step_accuracy


def rejection_sampling(candidates: Sequence[records_pb2.Trajectory], context: PolicyContext) -> Choice:
    """The paper's SLM-RFT: one correct learner sample per problem (the first by sample index)."""
    samples = [t for t in candidates if t.origin == LEARNER]
    correct = _correct(samples, context)
    if not correct:
        return Choice(None, f"no correct learner sample among {len(samples)}{_step_note(context)}")
    return Choice(correct[0], f"first correct learner sample ({len(correct)} of {len(samples)} correct)")


def of_origin(origin: int, label: str) -> Callable[[Sequence[records_pb2.Trajectory], PolicyContext], Choice]:
    """The paper's Oracle baselines: the (first) correct trace of one Oracle origin."""

    def policy(candidates: Sequence[records_pb2.Trajectory], context: PolicyContext) -> Choice:
        correct = _correct(candidates, context, origin)
        if not correct:
            present = sum(t.origin == origin for t in candidates)
            return Choice(None, f"no correct {label} trace among {present}{_step_note(context)}")
        return Choice(correct[0], f"correct {label} trace ({len(correct)} available)")

    return policy


def utility(candidates: Sequence[records_pb2.Trajectory], context: PolicyContext) -> Choice:
    """Ours: among correct candidates of any origin, the best trade-off of quality and compatibility.

    utility = reward - weight * ln(cost): the reward model's score, minus the learner's
    adaptation cost: its perplexity (nats per token, the default) or, with
    `utility_cost: rsr`, the rank-surprisal ratio. Candidates whose perplexity exceeds
    `ppl_ceiling_factor` x the median perplexity of the learner's own samples of the
    problem are excluded outright (the paper's failure mode: high reward, far from the
    learner). Candidates without reward or perplexity cannot be weighed and are skipped.
    """
    cost = context.utility_cost
    correct = [t for t in _correct(candidates, context) if t.scores.HasField("reward") and t.scores.HasField("ppl")
               and t.scores.HasField(cost)]
    if not correct:
        return Choice(None, f"no correct candidate with reward and {cost} among {len(candidates)}"
                            f"{_step_note(context)}")
    ceiling = None if context.learner_ppl_median is None else context.ppl_ceiling_factor * context.learner_ppl_median
    affordable = [t for t in correct if ceiling is None or t.scores.ppl <= ceiling]
    if not affordable:
        return Choice(None, f"all {len(correct)} correct candidates above the perplexity ceiling {ceiling:.2f}")

    def score(t: records_pb2.Trajectory) -> float:
        return t.scores.reward - context.utility_weight * math.log(getattr(t.scores, cost))

    best = max(affordable, key=lambda t: (score(t), -t.origin, -t.sample_index))
    origin = origin_name(best.origin)
    ceiling_text = f"{ceiling:.2f}" if ceiling is not None else "none yet"
    return Choice(best, f"highest utility {score(best):.3f} (reward {best.scores.reward:.3f}, {cost} "
                        f"{getattr(best.scores, cost):.2f}, {origin}) of {len(affordable)} correct under the ppl "
                        f"ceiling {ceiling_text}", utility=score(best))


def _step_note(context: PolicyContext) -> str:
    return f" whose checked steps hold at least {context.min_step_accuracy:.2f}" if context.min_step_accuracy else ""


POLICIES: dict[str, Callable[[Sequence[records_pb2.Trajectory], PolicyContext], Choice]] = {
    "rejection_sampling": rejection_sampling,
    "oracle_refined": of_origin(REFINED, "oracle_refined"),
    "oracle_synthesized": of_origin(SYNTHESIZED, "oracle_synthesized"),
    "style_aligned": of_origin(ALIGNED, "style_aligned"),
    "utility": utility,
}
DEFAULT_POLICY = "rejection_sampling"


def check_policy(name: str, field: str) -> None:
    if name not in POLICIES:
        raise InvalidInput(field, f"unknown policy {name[:80]!r}; known: {', '.join(sorted(POLICIES))}")
