"""The trainer service's logic: hold curated examples, train on them when enough arrived or when asked.

Examples stay held (the runner commits no offset past them) until a checkpoint that
includes them is registered, so a crash mid-training loses nothing: they are read
again and the registry has no half-registered checkpoint.

What has been trained on is the registry's to say: every checkpoint lists its example
ids, and an example one of them already holds is not held again. So a trainer killed
between registering and committing, then restarted, reads those examples again and
trains nothing twice: each example set gives one checkpoint.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from google.protobuf.message import Message

from learnerfit.domain import topics
from learnerfit.errors import FailedPrecondition, InvalidInput
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.v1 import records_pb2, runtime_pb2
from trainer.config import TrainSettings
from trainer.evaluate import HeldOutEvaluator
from trainer.promotion import PromotionGate
from trainer.sft import read_examples, train_and_register

log = logging.getLogger(__name__)


class ContinuousTrainer:
    def __init__(self, registry: CheckpointRegistry, settings: TrainSettings, train_every: int,
                 evaluator: HeldOutEvaluator, gate: PromotionGate, retry_initial_s: float = 30.0,
                 retry_max_s: float = 600.0, max_tries: int = 6, clock: Callable[[], float] = time.monotonic):
        self.registry = registry
        self.settings = settings
        self.evaluator = evaluator
        self.gate = gate
        self.train_every = train_every  # 0: only when asked (the Train RPC)
        self._held: OrderedDict[str, records_pb2.CuratedExample] = OrderedDict()
        # Examples some registered checkpoint was trained on (batch id kept for wait_for).
        self._trained: dict[str, str] = {eid: "" for c in registry.list() for eid in c.example_ids}
        self._changed = threading.Condition()  # guards _held and _trained; the stage and the RPC never train at once
        self._training = threading.Lock()
        # A failed training is tried again on its own (tick), with exponential backoff, not only when more examples
        # arrive: its examples stay held meanwhile and the commit waits for them.
        self.retry_initial_s, self.retry_max_s, self.clock = retry_initial_s, retry_max_s, clock
        self.max_tries = max_tries  # then its examples are dead-lettered with the reason, and let go
        self._failures = 0
        self._retry_at: float | None = None

    def __call__(self, examples: Sequence[records_pb2.CuratedExample]) -> list[Message]:
        """The stage: holds the examples not trained on yet; trains once `train_every` are held. A failed training
        keeps them held (tried again by `tick` after a backoff, or when more arrive) rather than failing the
        records that happened to be read."""
        with self._changed:
            for example in examples:
                if example.id not in self._trained:
                    self._held.setdefault(example.id, example)
            self._changed.notify_all()
            due = self.train_every and len(self._held) >= self.train_every
        return self._train_held() if due else []

    @property
    def failed_in_a_row(self) -> int:
        """Trainings that failed since the last one that succeeded."""
        return self._failures

    def tick(self) -> list[Message]:
        """Tries a failed training again once its backoff has passed."""
        if self._retry_at is None or self.clock() < self._retry_at:
            return []
        log.info("trying the failed training again (attempt %d)", self._failures + 1)
        return self._train_held()

    def _train_held(self) -> list[Message]:
        try:
            checkpoint = self.train_now()
        except Exception as exc:
            self._failures += 1
            if self._failures >= self.max_tries:
                return self._give_up(exc)
            delay = min(self.retry_max_s, self.retry_initial_s * 2 ** (self._failures - 1))
            self._retry_at = self.clock() + delay
            log.exception("training on %d held examples failed (%d in a row); they stay held, tried again in %.0fs",
                          len(self._held), self._failures, delay)
            return []
        self._failures, self._retry_at = 0, None
        return [checkpoint] if checkpoint is not None else []

    def _give_up(self, error: Exception) -> list[runtime_pb2.DeadLetter]:
        """After max_tries: every held example becomes a dead letter with the reason (`learnerfit dead-letters`
        lists them; --replay puts them back on `curated` once the cause is fixed), and is let go, so the commit
        moves on and the next examples are trained on."""
        reason = (f"training failed {self._failures} times in a row, the last: {type(error).__name__}: {error}")[:4096]
        log.error("giving up on %d held examples: %s", len(self._held), reason)
        with self._changed:
            given_up, self._held = list(self._held.values()), OrderedDict()
        self._failures, self._retry_at = 0, None
        return [runtime_pb2.DeadLetter(
            id=f"{topics.CURATED}/training/{example.id}", stage="trainer", reason=reason, transient=True,
            source_topic=topics.CURATED, record_id=example.id, record_type=example.DESCRIPTOR.full_name,
            problem_id=example.problem_id, value=example.SerializeToString(), attempts=self.max_tries)
            for example in given_up]

    @staticmethod
    def check(example: records_pb2.CuratedExample) -> None:
        """What the stage refuses to hold: an example that cannot be trained on (dead-lettered on its own)."""
        if not example.id:
            raise InvalidInput("example.id", "must be set")
        if not example.messages or example.messages[-1].role != "assistant" or not example.messages[-1].content:
            raise InvalidInput("example.messages", "must end with a non-empty assistant turn (the solution)")

    def held_ids(self) -> set[str]:
        with self._changed:
            return set(self._held)

    def release(self, ids: set[str]) -> None:
        """Forgets held examples whose partitions moved to another replica, which reads and trains on them."""
        with self._changed:
            for example_id in ids:
                self._held.pop(example_id, None)

    def wait_for(self, batch_id: str, count: int, timeout_s: float) -> None:
        """Blocks until `count` examples of `batch_id` are held, or raises FailedPrecondition after timeout_s."""
        def arrived() -> int:
            return (sum(e.batch_id == batch_id for e in self._held.values())
                    + sum(b == batch_id for b in self._trained.values()))

        with self._changed:
            if not self._changed.wait_for(lambda: arrived() >= count, timeout=timeout_s):
                raise FailedPrecondition(f"batch {batch_id}: {arrived()} of {count} curated examples reached the "
                                         f"trainer within {timeout_s:.0f}s")

    def newest_with(self, batch_id: str) -> records_pb2.Checkpoint | None:
        """The newest registered checkpoint trained on examples of `batch_id` (this process saw them arrive)."""
        with self._changed:
            ids = {eid for eid, batch in self._trained.items() if batch == batch_id}
        return next((c for c in reversed(self.registry.list()) if ids.intersection(c.example_ids)), None)

    def train_now(self) -> records_pb2.Checkpoint | None:
        """Trains on every held example and registers the checkpoint; None when none is held."""
        with self._training:
            with self._changed:
                examples = list(self._held.values())
            if not examples:
                return None
            return self._train(examples, start_from="", replay=self.replay(examples))

    def train_given(self, examples: Sequence[records_pb2.CuratedExample], start_from: str, *,
                    seed: int | None = None, epochs: float | None = None) -> records_pb2.Checkpoint:
        """Trains on exactly `examples` (a study's training set) from `start_from` and registers the checkpoint;
        `seed` and `epochs` (passes over the set instead of train.max_steps) replace the trainer's settings for this
        one training. Held examples wait; any of these that were held are released, as a checkpoint now holds
        them."""
        for example in examples:
            self.check(example)
        if epochs is not None and epochs <= 0:
            raise InvalidInput("given.epochs", f"{epochs} passes: give a positive number")
        settings = self.settings.model_copy(update={
            **({"seed": seed} if seed is not None else {}),
            **({"epochs": epochs, "max_steps": 0} if epochs is not None else {})})
        with self._training:
            return self._train(examples, start_from, settings)

    def replay(self, new: Sequence[records_pb2.CuratedExample]) -> list[records_pb2.CuratedExample]:
        """train.replay earlier examples, drawn with the training seed from what the followed learner was trained on
        along its lineage (each checkpoint keeps its examples), none of them among the new ones."""
        if not self.settings.replay:
            return []
        fresh, pool, checkpoint = {e.id for e in new}, {}, self.registry.followed()
        while checkpoint is not None:
            for example in read_examples(Path(self.registry.path_of(checkpoint))):
                if example.id not in fresh:
                    pool.setdefault(example.id, example)
            start = checkpoint.training.start_from
            checkpoint = self.registry.get(start) if start not in ("", "base") else None
        chosen = random.Random(self.settings.seed + len(pool)).sample(sorted(pool), min(self.settings.replay,
                                                                                       len(pool)))
        return [pool[i] for i in sorted(chosen)]

    def _train(self, examples: Sequence[records_pb2.CuratedExample], start_from: str,
               settings: TrainSettings | None = None,
               replay: Sequence[records_pb2.CuratedExample] = ()) -> records_pb2.Checkpoint:
        self.gate.settle()  # what an earlier failure left pending is decided before anything trains on top of it
        checkpoint = train_and_register(self.registry, examples, settings or self.settings, start_from,
                                        self.evaluator, promotion=self.gate.registered_as(), replay=replay)
        with self._changed:
            for example in examples:
                self._held.pop(example.id, None)  # released: the runner may now commit past them
                self._trained[example.id] = example.batch_id
        log.info("registered %s %s", checkpoint.version, dict(checkpoint.eval))
        # Registered, so never trained again; if deciding fails it stays pending and is decided next time.
        return self.gate.decide(checkpoint)
