"""Which checkpoint is the learner: a new checkpoint is promoted only if it is not measurably worse than the learner
it would replace, and the learner services follow the promoted checkpoint promoted last.

The gate compares the two on the same held-out problems with the same sampling seeds (paired), problems resampled;
a checkpoint is promoted when the one-sided lower bound of its accuracy minus the learner's, at `confidence`, is
above -`margin`: "not worse by more than the margin", a non-inferiority test. An evaluation too small to tell is
refused where the gate decides on its own (continuous training), rather than deciding on noise.

After promotion the watch compares the learner's accuracy on its own fresh samples with its predecessor's, and rolls
it back when it is worse by more than the margin at the confidence: the followers return to the predecessor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from statistics import NormalDist

from pydantic import Field

from learnerfit.domain.ids import version_number
from learnerfit.domain.records import enum_name
from learnerfit.domain.stats import difference_interval, paired_cluster_bootstrap
from learnerfit.section import Section
from learnerfit.v1 import records_pb2

PENDING, PROMOTED, NOT_PROMOTED, ROLLED_BACK = (
    records_pb2.PROMOTION_STATE_PENDING, records_pb2.PROMOTION_STATE_PROMOTED,
    records_pb2.PROMOTION_STATE_NOT_PROMOTED, records_pb2.PROMOTION_STATE_ROLLED_BACK)
# Registered before promotion existed: followed, as every checkpoint was then.
FOLLOWABLE = (records_pb2.PROMOTION_STATE_UNSPECIFIED, PROMOTED)


class PromotionSettings(Section):
    """The gate a new checkpoint passes before the learner services follow it (the trainer's `promotion` section)."""

    gate: bool = Field(True, description="Compare each new checkpoint with the learner on the held-out problems "
                                         "before it is followed (false: every checkpoint is followed at once).")
    margin: float = Field(0.05, ge=0, le=1, description="How much worse (held-out accuracy) a checkpoint may measure "
                                                        "and still be promoted.")
    confidence: float = Field(0.9, gt=0.5, lt=1, description="One-sided confidence that it is not worse than that.")
    min_eval_samples: int = Field(64, ge=1, description="Held-out samples (train.eval_problems x eval_k) the gate "
                                                        "needs to decide on its own; continuous training with fewer "
                                                        "is refused at start.")
    watch: bool = Field(True, description="After promotion, compare the learner's accuracy on its own fresh samples "
                                          "with its predecessor's, and roll it back when it measures worse by more "
                                          "than the margin at the confidence.")
    watch_min_samples: int = Field(64, ge=1, description="Fresh learner samples each of the two needs before the "
                                                         "watch compares them.")


def state_words(state: int) -> str:
    """PROMOTION_STATE_NOT_PROMOTED -> "not promoted", as the CLI and errors say it."""
    return enum_name(records_pb2.PromotionState, state).replace("_", " ")


def followed(checkpoints: Iterable[records_pb2.Checkpoint]) -> records_pb2.Checkpoint | None:
    """The checkpoint the learner services follow: the promoted one promoted last (an unspecified one, registered
    before promotion existed, counts as promoted in version order, before any promoted since)."""
    candidates = [c for c in checkpoints if c.promotion.state in FOLLOWABLE]
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c.promotion.sequence, version_number(c.version)))


def gate_decision(candidate: Mapping[str, Sequence[bool]], learner: Mapping[str, Sequence[bool]], compared_with: str,
                  settings: PromotionSettings) -> records_pb2.Promotion:
    """Promoted or not, with the evidence: each argument one learner's held-out outcomes (problem id -> whether each
    sample was right), on the same problems and sampling seeds."""
    paired = paired_cluster_bootstrap([candidate], [learner], level=2 * settings.confidence - 1)
    samples = sum(map(len, candidate.values()))
    accuracy, other = _accuracy(candidate), _accuracy(learner)
    promoted = paired.low >= -settings.margin
    words = (f"held-out accuracy {accuracy:.3f} against {compared_with}'s {other:.3f} on the same {samples} samples; "
             f"difference {paired.difference:+.3f}, at least {paired.low:+.3f} with {settings.confidence:.0%} "
             f"confidence")
    reason = (f"{words}: not worse than {compared_with} by more than {settings.margin:.2f}" if promoted else
              f"{words}: may be worse than {compared_with} by more than {settings.margin:.2f}")
    return records_pb2.Promotion(state=PROMOTED if promoted else NOT_PROMOTED, reason=reason, decided_by="gate",
                                 compared_with=compared_with, accuracy=accuracy, compared_accuracy=other,
                                 difference_low=paired.low, confidence=settings.confidence, samples=samples)


class OnlineTally:
    """The learner's own samples as the pipeline scores them: per checkpoint, how many were right (the `scored`
    topic, folded). Its samples are of the live problems, not a held-out set: two checkpoints are compared on
    different problems, so only a clear drop counts."""

    def __init__(self):
        self.counts: dict[str, list[int]] = {}  # checkpoint -> [right, scored]
        self._seen: set[str] = set()

    def fold(self, trajectory: records_pb2.Trajectory) -> None:
        if trajectory.origin != records_pb2.ORIGIN_LEARNER_SAMPLE or trajectory.id in self._seen:
            return
        self._seen.add(trajectory.id)  # a record read twice (a restarted follower) counts once
        counts = self.counts.setdefault(trajectory.checkpoint or "base", [0, 0])
        counts[0] += trajectory.scores.verdict == records_pb2.VERDICT_CORRECT
        counts[1] += 1


def watch_decision(learner: records_pb2.Checkpoint, tally: OnlineTally,
                   settings: PromotionSettings) -> records_pb2.Promotion | None:
    """A roll-back of the followed `learner` when its accuracy on its own fresh samples is below its predecessor's
    (the learner the gate compared it with) by more than the margin at the confidence; None while it is not, or
    cannot yet be told. Only what the gate promoted is watched: an operator's promotion is the operator's call."""
    if not settings.watch or learner.promotion.decided_by != "gate" or not learner.promotion.compared_with:
        return None
    before = learner.promotion.compared_with
    (now_right, now_scored), (before_right, before_scored) = (tally.counts.get(learner.version, [0, 0]),
                                                              tally.counts.get(before, [0, 0]))
    if min(now_scored, before_scored) < settings.watch_min_samples:
        return None
    # A one-sided bound at the confidence is one end of the two-sided interval at 2 x confidence - 1.
    z = NormalDist().inv_cdf(settings.confidence)
    low, high = difference_interval(now_right, now_scored, before_right, before_scored, z)
    if high >= -settings.margin:
        return None
    now, then = now_right / now_scored, before_right / before_scored
    return records_pb2.Promotion(
        state=ROLLED_BACK, decided_by="watch", compared_with=before, accuracy=now, compared_accuracy=then,
        difference_low=low, confidence=settings.confidence, samples=now_scored,
        reason=f"on its own fresh samples {now:.3f} ({now_scored}) against {before}'s {then:.3f} ({before_scored}): "
               f"worse by at least {-high:.3f} with {settings.confidence:.0%} confidence, more than the margin "
               f"{settings.margin:.2f}")


def _accuracy(outcomes: Mapping[str, Sequence[bool]]) -> float:
    return sum(map(sum, outcomes.values())) / max(sum(map(len, outcomes.values())), 1)
