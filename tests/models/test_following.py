"""The followed learner: the newest announced checkpoint at each batch, a pinned one, others by name (LRU)."""

from __future__ import annotations

import pytest

from learnerfit.errors import InvalidInput, NotFound
from learnerfit.models.following import FollowedLearner
from learnerfit.v1 import records_pb2


def _checkpoint(version: str) -> records_pb2.Checkpoint:
    return records_pb2.Checkpoint(version=version, uri=f"/registry/checkpoints/{version}")


class Loads:
    """Records what was loaded; a "model" is the path it was loaded from."""

    def __init__(self):
        self.paths: list[str] = []

    def __call__(self, path: str) -> str:
        self.paths.append(path)
        return path


def test_the_newest_announced_checkpoint_is_taken_up_at_the_next_batch_and_only_once():
    load = Loads()
    learner = FollowedLearner("base", "base-model", load)
    assert learner.current() == ("base", "base-model")
    learner.announce(_checkpoint("v2"))
    learner.announce(_checkpoint("v10"))  # by number, not by text: v10 is newer than v2
    learner.announce(_checkpoint("v3"))
    assert learner.current() == ("v10", "/registry/checkpoints/v10")
    assert learner.current() == ("v10", "/registry/checkpoints/v10")
    assert load.paths == ["/registry/checkpoints/v10"]


def test_the_registrys_newest_is_taken_up_at_start_and_a_pinned_version_is_kept():
    lookups: list[str] = []

    def lookup(version: str) -> records_pb2.Checkpoint:
        lookups.append(version)
        return _checkpoint(version)

    resumed = FollowedLearner("base", "base-model", Loads(), newest=lambda: _checkpoint("v4"))
    assert resumed.current()[0] == "v4"
    pinned = FollowedLearner("base", "base-model", Loads(), lookup=lookup, pin="v1")
    pinned.announce(_checkpoint("v5"))
    assert pinned.current() == ("v1", "/registry/checkpoints/v1") and lookups == ["v1"]


def test_other_versions_are_loaded_by_name_and_the_least_recently_used_is_dropped():
    load = Loads()
    learner = FollowedLearner("base", "base-model", load, lookup=_checkpoint, max_loaded=2)
    assert learner.named("v1") == ("v1", "/registry/checkpoints/v1")
    assert learner.named("v1") == ("v1", "/registry/checkpoints/v1")  # kept loaded
    learner.named("v2")  # room for one besides the current: v1 is dropped
    learner.named("v1")
    assert load.paths == ["/registry/checkpoints/v1", "/registry/checkpoints/v2", "/registry/checkpoints/v1"]


@pytest.mark.parametrize("name", ["..", "latest", "v0", "v1/../v2", ""])
def test_names_that_are_not_versions_are_invalid(name):
    learner = FollowedLearner("base", "base-model", Loads(), lookup=_checkpoint)
    with pytest.raises(InvalidInput) as error:
        learner.named(name)
    assert error.value.field == "checkpoint"


def test_a_version_nobody_announced_without_a_registry_is_not_found():
    with pytest.raises(NotFound, match="not announced, and no registry configured"):
        FollowedLearner("base", "base-model", Loads()).named("v3")


def test_the_base_model_can_still_be_named_once_the_learner_has_moved_on():
    """A study measures the drift of its own sets under the base model while the stack follows its checkpoints."""
    load = Loads()
    learner = FollowedLearner("base", "base-model", load, base_model="/models/smollm2")
    learner.announce(_checkpoint("v2"))
    assert learner.current()[0] == "v2"
    assert learner.named("base") == ("base", "/models/smollm2")
    assert learner.named("base") == ("base", "/models/smollm2")  # kept loaded
    assert load.paths == ["/registry/checkpoints/v2", "/models/smollm2"]
    unknown_base = FollowedLearner("base", "base-model", Loads())
    unknown_base.announce(_checkpoint("v2"))
    unknown_base.current()
    with pytest.raises(InvalidInput):  # without knowing what the base was loaded from, "base" is not a version
        unknown_base.named("base")


def _decided(version: str, state: int, sequence: int = 0) -> records_pb2.Checkpoint:
    checkpoint = _checkpoint(version)
    checkpoint.promotion.state, checkpoint.promotion.sequence = state, sequence
    return checkpoint


def test_only_promoted_checkpoints_are_followed_the_last_promoted_first_and_a_roll_back_returns_to_the_one_before():
    load = Loads()
    learner = FollowedLearner("base", "base-model", load)
    learner.announce(_decided("v1", records_pb2.PROMOTION_STATE_PENDING))
    assert learner.current()[0] == "base"  # registered, not yet compared with the learner
    learner.announce(_decided("v1", records_pb2.PROMOTION_STATE_PROMOTED, sequence=1))
    learner.announce(_decided("v2", records_pb2.PROMOTION_STATE_NOT_PROMOTED))
    assert learner.current()[0] == "v1"  # v2 is newer, but measured worse: not followed
    learner.announce(_decided("v3", records_pb2.PROMOTION_STATE_PROMOTED, sequence=2))
    learner.announce(_decided("v2", records_pb2.PROMOTION_STATE_PROMOTED, sequence=3))  # an operator's promote
    assert learner.current()[0] == "v2"  # promoted last, though older than v3
    learner.announce(_decided("v2", records_pb2.PROMOTION_STATE_ROLLED_BACK, sequence=3))
    assert learner.current()[0] == "v3"
    for version in ("v1", "v3"):
        learner.announce(_decided(version, records_pb2.PROMOTION_STATE_ROLLED_BACK))
    assert learner.current() == ("base", "base-model")  # nothing promoted is left: the base model, not reloaded
    assert load.paths == [f"/registry/checkpoints/{v}" for v in ("v1", "v2", "v3")]
