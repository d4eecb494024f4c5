"""Promotion decisions on outcomes built so the answer is known: which checkpoint is followed, what the gate and the
watch decide, and when they decline to decide."""

from __future__ import annotations

from learnerfit.domain.promotion import OnlineTally, PromotionSettings, followed, gate_decision, watch_decision
from learnerfit.v1 import records_pb2

PROMOTED, NOT_PROMOTED, ROLLED_BACK, PENDING = (
    records_pb2.PROMOTION_STATE_PROMOTED, records_pb2.PROMOTION_STATE_NOT_PROMOTED,
    records_pb2.PROMOTION_STATE_ROLLED_BACK, records_pb2.PROMOTION_STATE_PENDING)


def _checkpoint(version: str, state: int = 0, sequence: int = 0, **promotion) -> records_pb2.Checkpoint:
    return records_pb2.Checkpoint(version=version, promotion=records_pb2.Promotion(state=state, sequence=sequence,
                                                                                   **promotion))


def _outcomes(right_per_problem: list[int], k: int = 4) -> dict[str, list[bool]]:
    return {f"p{i}": [j < right for j in range(k)] for i, right in enumerate(right_per_problem)}


def test_the_followed_checkpoint_is_the_promoted_one_promoted_last_and_old_ones_count_as_promoted():
    assert followed([]) is None
    legacy = [_checkpoint("v1"), _checkpoint("v2")]  # registered before the gate: followed in version order
    assert followed(legacy).version == "v2"
    decided = [*legacy, _checkpoint("v3", PROMOTED, 2), _checkpoint("v4", PROMOTED, 1), _checkpoint("v5", PENDING),
               _checkpoint("v6", NOT_PROMOTED), _checkpoint("v7", ROLLED_BACK, 3)]
    assert followed(decided).version == "v3"


def test_the_gate_promotes_what_is_not_worse_by_the_margin_and_refuses_a_clear_drop():
    settings = PromotionSettings()
    learner = _outcomes([2] * 32)  # 0.5 on 32 problems x 4
    same = gate_decision(_outcomes([2] * 32), learner, "v1", settings)
    assert same.state == PROMOTED and same.difference_low == 0 and same.samples == 128
    assert same.reason.startswith("held-out accuracy 0.500 against v1's 0.500 on the same 128 samples")
    worse = gate_decision(_outcomes([1] * 32), learner, "v1", settings)
    assert worse.state == NOT_PROMOTED and worse.accuracy == 0.25 and worse.compared_accuracy == 0.5
    assert "may be worse than v1 by more than 0.05" in worse.reason
    # Slightly worse on a few problems, well inside the margin: promoted.
    slightly = gate_decision(_outcomes([2] * 31 + [1]), learner, "v1", settings)
    assert slightly.state == PROMOTED and slightly.difference_low > -0.05


def test_the_watch_rolls_back_a_clear_drop_on_fresh_samples_and_nothing_else():
    settings = PromotionSettings(watch_min_samples=50)
    tally = OnlineTally()

    def sample(i, checkpoint, right):
        t = records_pb2.Trajectory(id=f"{checkpoint}-{i}", checkpoint=checkpoint,
                                   origin=records_pb2.ORIGIN_LEARNER_SAMPLE)
        t.scores.verdict = records_pb2.VERDICT_CORRECT if right else records_pb2.VERDICT_INCORRECT
        return t

    for i in range(100):
        tally.fold(sample(i, "v1", i % 2 == 0))
        tally.fold(sample(i, "v1", i % 2 == 0))  # read twice: counted once
    oracle = records_pb2.Trajectory(id="o", checkpoint="v2", origin=records_pb2.ORIGIN_ORACLE_SYNTHESIZED)
    tally.fold(oracle)  # not the learner's own sample
    assert tally.counts == {"v1": [50, 100]}
    learner = _checkpoint("v2", PROMOTED, 1, decided_by="gate", compared_with="v1")
    for i in range(49):
        tally.fold(sample(i, "v2", False))
    assert watch_decision(learner, tally, settings) is None  # 49 samples: too few to tell
    tally.fold(sample(49, "v2", False))
    rolled = watch_decision(learner, tally, settings)
    assert rolled.state == ROLLED_BACK and rolled.decided_by == "watch" and rolled.samples == 50
    by_hand = _checkpoint("v2", PROMOTED, 1, decided_by="operator", compared_with="v1")
    assert watch_decision(by_hand, tally, settings) is None  # an operator's promotion is the operator's call
    assert watch_decision(learner, tally, PromotionSettings(watch=False, watch_min_samples=50)) is None
    close = OnlineTally()
    for i in range(100):
        close.fold(sample(i, "v1", i % 2 == 0))
        close.fold(sample(i, "v2", i % 20 < 9))  # 0.45 against 0.50: within what the margin and noise allow
    assert watch_decision(learner, close, settings) is None
