"""The promotion gate: a checkpoint the trainer registers is followed only once it measured not worse than the
learner it would replace (learnerfit/domain/promotion.py), on the trainer's held-out problems.

The checkpoint is registered pending; the gate compares its held-out samples (stored with it) with the current
learner's on the same problems and sampling seeds, and records the decision in the registry, which the trainer then
announces. A trainer killed between the two leaves the checkpoint pending and every follower on the old learner; at
its next start (and before each training) it decides what is pending.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import Counter

from learnerfit.domain.promotion import (
    PENDING,
    PROMOTED,
    OnlineTally,
    PromotionSettings,
    followed,
    gate_decision,
    watch_decision,
)
from learnerfit.domain.records import enum_name
from learnerfit.errors import InvalidInput
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.v1 import records_pb2
from trainer.evaluate import HeldOutEvaluator, outcomes
from trainer.sft import read_held_out

log = logging.getLogger(__name__)
DECISIONS = Counter("learnerfit_promotion_decisions_total", "Promotion decisions, by decision and who made it.",
                    ["decision", "decided_by"])


def counted(checkpoint: records_pb2.Checkpoint) -> records_pb2.Checkpoint:
    promotion = checkpoint.promotion
    DECISIONS.labels(enum_name(records_pb2.PromotionState, promotion.state), promotion.decided_by or "-").inc()
    return checkpoint


class PromotionGate:
    def __init__(self, registry: CheckpointRegistry, evaluator: HeldOutEvaluator, settings: PromotionSettings):
        self.registry = registry
        self.evaluator = evaluator
        self.settings = settings
        self._base: dict[str, list[bool]] | None = None  # the base model's outcomes, sampled once

    @property
    def checks(self) -> bool:
        """Whether it compares at all: the gate is on and the trainer has a held-out set."""
        return self.settings.gate and bool(self.evaluator.settings.eval_problems)

    def check_size(self) -> None:
        """Continuous training decides on its own: refused where its held-out set is too small to tell."""
        train = self.evaluator.settings
        if self.settings.gate and train.eval_problems * train.eval_k < self.settings.min_eval_samples:
            raise InvalidInput("train.eval_problems", f"{train.eval_problems} held-out problems x eval_k "
                               f"{train.eval_k} = {train.eval_problems * train.eval_k} samples; the promotion gate "
                               f"needs at least promotion.min_eval_samples = {self.settings.min_eval_samples} to "
                               "decide on its own (or set promotion.gate false)")

    def registered_as(self) -> records_pb2.Promotion:
        """The state a new checkpoint is registered in: pending while the gate decides, else promoted unchecked."""
        if self.checks:
            return records_pb2.Promotion(state=PENDING, reason="registered; compared with the learner next")
        why = "promotion.gate is off" if not self.settings.gate else "no held-out set (train.eval_problems 0)"
        return records_pb2.Promotion(state=PROMOTED, decided_by="unchecked", reason=f"followed unchecked: {why}")

    def decide(self, checkpoint: records_pb2.Checkpoint) -> records_pb2.Checkpoint:
        """Compares a pending checkpoint with the learner and records the decision (a decided one is returned as
        it is)."""
        if checkpoint.promotion.state != PENDING:
            return checkpoint
        learner = self.registry.followed()
        name = learner.version if learner is not None else "base"
        decision = gate_decision(self._outcomes(checkpoint), self._outcomes(learner), name, self.settings)
        log.info("%s %s: %s", checkpoint.version, "promoted" if decision.state == PROMOTED else "not promoted",
                 decision.reason)
        return counted(self.registry.set_promotion(checkpoint.version, decision))

    def settle(self) -> list[records_pb2.Checkpoint]:
        """Decides every checkpoint left pending (a trainer or registry that died mid-promotion), oldest first."""
        return [self.decide(c) for c in self.registry.list() if c.promotion.state == PENDING]

    def _outcomes(self, checkpoint: records_pb2.Checkpoint | None) -> dict[str, list[bool]]:
        if checkpoint is None:
            if self._base is None:
                self._base = outcomes(self.evaluator.judge(self.evaluator.settings.base_model))
            return self._base
        folder = Path(self.registry.path_of(checkpoint))
        stored = read_held_out(folder, self.evaluator.evidence_key())
        return outcomes(stored if stored is not None else self.evaluator.judge(folder))


class PromotionWatch:
    """After promotion: folds the `checkpoints` topic (which checkpoint is followed) and the `scored` topic (the
    learner's accuracy on its own fresh samples, per checkpoint), and rolls the followed checkpoint back when it
    measures worse than its predecessor (learnerfit/domain/promotion.py: watch_decision). `announce` publishes the
    decision, so every follower returns to the predecessor."""

    def __init__(self, registry: CheckpointRegistry, settings: PromotionSettings, announce):
        self.registry = registry
        self.settings = settings
        self.announce = announce
        self.tally = OnlineTally()
        self._announced: dict[str, records_pb2.Checkpoint] = {}
        self._learner: records_pb2.Checkpoint | None = None  # followed(_announced), kept as announcements arrive
        self._rolled_back: set[str] = set()

    def fold(self, message) -> None:
        if isinstance(message, records_pb2.Checkpoint):
            self._announced[message.version] = message
            self._learner = followed(self._announced.values())
            return
        self.tally.fold(message)  # every scored record: the check below stays a lookup, not a scan
        learner = self._learner
        if learner is None or learner.version in self._rolled_back:
            return
        decision = watch_decision(learner, self.tally, self.settings)
        if decision is not None:
            self._rolled_back.add(learner.version)
            log.warning("%s rolled back: %s", learner.version, decision.reason)
            self.announce(counted(self.registry.set_promotion(learner.version, decision)))
