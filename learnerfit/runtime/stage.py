"""A Kafka stage in one record: what it reads and writes (StageSpec, part of a service's declaration) and its
logic (StageLogic, what the service's build returns). The runner takes the two together as a Stage."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import Message

BatchFn = Callable[[Sequence[Message]], Sequence[Message]]


@dataclass(frozen=True)
class StageSpec:
    """What a stage reads (several topics are read as one stream) and where each output type goes."""

    consumes: Sequence[str]
    input_type: type[Message]
    produces: Mapping[type[Message], str]
    # Topics outputs may be routed to by content (StageLogic.route), beyond `produces`; no other: the topics a spec
    # declares, which its Kafka ACLs are made of, are the topics it writes.
    also_produces: Sequence[str] = ()
    # Output types published only after the others are acknowledged: records that say the work is done
    # (the curator's decisions), so a crash never leaves such a record without the outputs it stands for.
    publish_last: Sequence[type[Message]] = ()

    @property
    def writes(self) -> list[str]:
        return list(dict.fromkeys([*self.produces.values(), *self.also_produces]))


class HeldInputs(Protocol):
    """A stage that holds inputs across batches until it can act on them (the curator waits for a problem's
    candidates, the trainer for enough examples). The runner never commits past a held input, so a restarted
    process reads it again and rebuilds its state."""

    def held_ids(self) -> set[str]:
        """The record ids of the inputs held now."""
        ...

    def release(self, ids: set[str]) -> None:
        """Forget these held inputs: a rebalance moved their partitions to another replica, which reads them again."""
        ...


@dataclass(frozen=True)
class StageLogic:
    """A stage's logic: a function from a batch of inputs to a flat list of outputs, and what it may add."""

    process: BatchFn
    route: Callable[[Message], str | None] | None = None  # by content (e.g. rejected Oracle outputs); else by type
    check: Callable[[Message], None] | None = None        # raises InvalidInput (TooLarge) for a bad input record
    held: HeldInputs | None = None                        # a stage that holds inputs across batches
    tick: Callable[[], Sequence[Message]] | None = None   # outputs due by time (a wait ran out), asked every poll


@dataclass(frozen=True)
class Stage:
    """What the runner runs: a stage's declaration and its logic, under the service's name."""

    name: str
    spec: StageSpec
    logic: StageLogic
