"""The trainer's logic: hold curated examples until `train_every` arrived, then train, evaluate and register.

Examples stay held (the runner commits no offset past them) until a checkpoint that
includes them is registered, so a crash mid-training loses nothing: they are read
again and the registry has no half-registered checkpoint.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence

from learnerfit.v1 import records_pb2
from services.registry.store import CheckpointRegistry
from services.trainer.settings import TrainerSettings
from trainer.sft import TrainSettings, newest_learner, train_and_register

log = logging.getLogger(__name__)


class Trainer:
    def __init__(self, settings: TrainerSettings):
        self.settings = settings
        self.registry = CheckpointRegistry(settings.registry_dir)
        self._pending: OrderedDict[str, records_pb2.CuratedExample] = OrderedDict()
        self._lock = threading.Lock()  # the stage and the Train RPC never train at once

    def __call__(self, examples: Sequence[records_pb2.CuratedExample]) -> list[list[records_pb2.Checkpoint]]:
        for example in examples:
            self._pending.setdefault(example.id, example)
        if len(self._pending) < self.settings.train_every:
            return [[] for _ in examples]
        checkpoint = self.train_now()
        return [[checkpoint] if i == 0 and checkpoint else [] for i in range(len(examples))]

    def held_ids(self) -> set[str]:
        return set(self._pending)

    def train_now(self) -> records_pb2.Checkpoint | None:
        """Trains on every pending example; None when there is none."""
        with self._lock:
            examples = list(self._pending.values())
            if not examples:
                return None
            name, base = newest_learner(self.registry, self.settings.base_model)
            log.info("training on %d curated examples from %s", len(examples), name)
            s = self.settings
            checkpoint = train_and_register(
                self.registry, examples, start=base, base_model=s.base_model,
                settings=TrainSettings(loss_type=s.loss_type, lora=s.lora, learning_rate=s.learning_rate,
                                       epochs=s.epochs),
                eval_problems=s.eval_problems, eval_k=s.eval_k)
            for example in examples:
                self._pending.pop(example.id, None)  # released: the runner may now commit past them
            log.info("registered %s %s", checkpoint.version, dict(checkpoint.eval))
            return checkpoint
