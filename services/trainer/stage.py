"""The trainer's logic: hold curated examples until `train_every` arrived, then train, evaluate and register.

Examples stay held (the runner commits no offset past them) until a checkpoint that
includes them is registered, so a crash mid-training loses nothing: they are read
again and the registry has no half-registered checkpoint.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from learnerfit.v1 import records_pb2
from services.registry.store import CheckpointRegistry
from services.trainer.settings import TrainerSettings
from trainer.sft import HELD_OUT_SEED, TrainSettings, train

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
            latest = self.registry.latest()
            base = str(self.registry.path_of(latest)) if latest else self.settings.base_model
            log.info("training on %d curated examples from %s", len(examples), latest.version if latest else "base")
            s = self.settings
            with tempfile.TemporaryDirectory(prefix="learnerfit-train-") as scratch:
                out = train(examples, base, Path(scratch) / "checkpoint",
                            TrainSettings(loss_type=s.loss_type, lora=s.lora, learning_rate=s.learning_rate,
                                          epochs=s.epochs))
                eval_results = self._evaluate(out)
                checkpoint = self.registry.register(
                    out, base_model=s.base_model,
                    kind=records_pb2.CHECKPOINT_KIND_ADAPTER if s.lora else records_pb2.CHECKPOINT_KIND_FULL,
                    example_ids=[e.id for e in examples],
                    policy=",".join(sorted({e.policy for e in examples if e.policy})), eval_results=eval_results)
            for example in examples:
                self._pending.pop(example.id, None)  # released: the runner may now commit past them
            log.info("registered %s %s", checkpoint.version, dict(checkpoint.eval))
            return checkpoint

    def _evaluate(self, out: Path) -> dict[str, float]:
        if not self.settings.eval_problems:
            return {}
        from learnerfit.problems import EASY_ARITHMETIC, from_reasoning_gym
        from trainer.evaluate import avg_at_k

        held_out = from_reasoning_gym("basic_arithmetic", self.settings.eval_problems, seed=HELD_OUT_SEED,
                                      options=EASY_ARITHMETIC)
        return {f"avg@{self.settings.eval_k}": avg_at_k(str(out), held_out, k=self.settings.eval_k)}
