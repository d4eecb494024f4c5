"""The learner a service runs: its base model, then each checkpoint the trainer announces (or one pinned).

Announcements arrive from the `checkpoints` topic (`announce`): each checkpoint as registered, then again with each
promotion decision, and the learner is the promoted one promoted last (a pending or refused checkpoint is never
followed; learnerfit/domain/promotion.py). The switch happens
in `current()`, asked at the start of a batch, so in-flight work finishes on the
model it started with. `sync`, when given, first catches up with announcements
made before the batch began. Other checkpoints named in a request (`named`) are
found among the announcements or through the registry, and kept loaded (LRU).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from learnerfit.domain.ids import version_number
from learnerfit.domain.promotion import followed
from learnerfit.errors import NotFound
from learnerfit.models.settings import LearnerSettings
from learnerfit.v1 import records_pb2

log = logging.getLogger(__name__)
Model = TypeVar("Model")


class FollowedLearner(Generic[Model]):
    def __init__(self, base_name: str, base: Model, load: Callable[[str], Model], *,
                 load_other: Callable[[str], Model] | None = None,
                 lookup: Callable[[str], records_pb2.Checkpoint] | None = None,
                 newest: Callable[[], records_pb2.Checkpoint | None] | None = None, pin: str | None = None,
                 max_loaded: int = 2, sync: Callable[[], None] | None = None, base_model: str | None = None):
        """`load` switches the learner to a checkpoint, `load_other` loads one a request names beside it (default:
        `load`); `lookup` finds a version in the registry; `newest` (asked once, at start) is the registry's followed
        checkpoint (the promoted one promoted last), so a restarted stack goes on from where training left off before
        any new announcement; `base_model` is what `base` was loaded from, so a request can still name the base once
        the learner moved on."""
        self.version, self.model = base_name, base
        self._base_name, self._base, self._base_model = base_name, base, base_model
        self._load = load
        self._load_other = load_other or load
        self._lookup = lookup  # the registry's GetCheckpoint, for versions not announced here
        self._pin = pin
        self._sync = sync
        self._max_loaded = max_loaded
        self._announced: dict[str, records_pb2.Checkpoint] = {}  # each version's latest announcement
        self._looked_up_cache: dict[str, records_pb2.Checkpoint] = {}  # found through the registry, not followed
        self._loaded: OrderedDict[str, Model] = OrderedDict()
        self._lock = threading.Lock()
        registered = newest() if newest is not None else None
        if registered is not None:
            self._announced[registered.version] = registered

    def announce(self, checkpoint: records_pb2.Checkpoint) -> None:
        """A checkpoint was registered (folded from the `checkpoints` topic)."""
        with self._lock:
            self._announced[checkpoint.version] = checkpoint

    def current(self) -> tuple[str, Model]:
        """(version or base name, model), after switching to the followed (or the pinned) checkpoint: the promoted
        one promoted last; the base model again when every checkpoint it followed was rolled back."""
        if self._sync is not None:
            self._sync()
        with self._lock:
            target = self._target()
            if target is not None and target.version != self.version:
                log.info("learner now %s (%s)", target.version, target.uri)
                self.model = self._load(target.uri)
                self.version = target.version
            elif target is None and self.version != self._base_name:
                log.info("learner now the base model again (%s was rolled back)", self.version)
                self.version, self.model = self._base_name, self._base
            return self.version, self.model

    def named(self, version: str) -> tuple[str, Model]:
        """A registered checkpoint by version, loaded on first use; the current one when it is that version."""
        name, model = self.current()
        if version == name:
            return name, model
        base = version == self._base_name and self._base_model is not None
        if not base:
            version_number(version, "checkpoint")
        with self._lock:
            if version in self._loaded:
                self._loaded.move_to_end(version)
                return version, self._loaded[version]
            source = self._base_model if base else (self._announced.get(version) or self._looked_up(version)).uri
            while self._loaded and len(self._loaded) >= self._max_loaded - 1:  # the current one always stays
                self._loaded.popitem(last=False)
            self._loaded[version] = loaded = self._load_other(source)
            return version, loaded

    def _target(self) -> records_pb2.Checkpoint | None:
        if self._pin:
            return self._announced.get(self._pin) or self._looked_up(self._pin)
        return followed(self._announced.values())

    def _looked_up(self, version: str) -> records_pb2.Checkpoint:
        if version in self._looked_up_cache:
            return self._looked_up_cache[version]
        if self._lookup is None:
            raise NotFound(f"checkpoint {version}: not announced, and no registry configured (registry.target)")
        self._looked_up_cache[version] = checkpoint = self._lookup(version)
        return checkpoint


class Registry(Protocol):
    """Where checkpoints that were not announced are found (learnerfit/registry/client.py: RegistryAccess)."""

    def lookup(self) -> Callable[[str], records_pb2.Checkpoint] | None: ...

    def newest(self) -> records_pb2.Checkpoint | None: ...


class Models(Protocol[Model]):
    """How checkpoints become models on the learner's engine (learnerfit/models/factory.py: LearnerModels)."""

    def load(self, model: str) -> Model: ...

    def load_other(self, model: str) -> Model: ...


def followed_learner(settings: LearnerSettings, models: Models[Model], registry: Registry,
                     sync: Callable[[], None]) -> FollowedLearner[Model]:
    """The learner of a service that follows checkpoints, as its `learner` and `registry` settings say."""
    return FollowedLearner(settings.base_name, models.load(settings.model), models.load,
                           load_other=models.load_other, lookup=registry.lookup(),
                           newest=registry.newest if settings.resume_newest else None, pin=settings.pin_checkpoint,
                           max_loaded=settings.max_loaded_checkpoints, sync=sync, base_model=settings.model)
