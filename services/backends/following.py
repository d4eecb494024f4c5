"""The learner a service runs: its base model, or the newest checkpoint in the registry (unless one is pinned).

Checked between batches, never during one, so in-flight work finishes on the model it
started with; a new checkpoint is loaded whole (a LoRA adapter loads with its base).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import Field

from services.common.settings import ServiceSettings

log = logging.getLogger(__name__)
Model = TypeVar("Model")


class FollowSettings(ServiceSettings):
    registry_dir: Path | None = Field(None, description="Checkpoint registry to follow (unset: the base model only).")
    pin_checkpoint: str | None = Field(None, description="Use this registered version (e.g. v1) instead of the "
                                                         "newest.")
    registry_poll_s: float = Field(5.0, ge=0, description="How often to look for a newer checkpoint.")


class FollowedModel(Generic[Model]):
    def __init__(self, base_name: str, base: Model, load: Callable[[str], Model], settings: FollowSettings):
        self.version, self.model = base_name, base
        self._load = load
        self._settings = settings
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def registry(self):
        """The followed CheckpointRegistry, or None when none is configured."""
        if self._settings.registry_dir is None:
            return None
        from services.registry.store import CheckpointRegistry

        return CheckpointRegistry(self._settings.registry_dir)

    def current(self) -> tuple[str, Model]:
        """(checkpoint version or base name, model), after loading a newer registered checkpoint if there is one."""
        settings = self._settings
        with self._lock:
            if settings.registry_dir is None or time.monotonic() - self._checked_at < settings.registry_poll_s:
                return self.version, self.model
            self._checked_at = time.monotonic()
            registry = self.registry()
            target = registry.get(settings.pin_checkpoint) if settings.pin_checkpoint else registry.latest()
            if target is not None and target.version != self.version:
                log.info("loading learner checkpoint %s", target.version)
                self.model = self._load(str(registry.path_of(target)))
                self.version = target.version
            return self.version, self.model
