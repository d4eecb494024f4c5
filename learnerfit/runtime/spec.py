"""A service, declared: its settings, its gRPC API, its stage's topics, and how to build its parts.

A service module is one ServiceSpec plus the function that builds its parts; the
runtime (app.py) owns everything else: settings loading, `--help`, topics, the
stage runner, followers, the gRPC server, health, metrics, logs and shutdown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from learnerfit.runtime.bus import Bus
from learnerfit.runtime.settings import ServiceSettings


@dataclass(frozen=True)
class Context:
    """What the runtime hands `build`: the bus, and a wait until the `follows` topics are folded up to now."""

    bus: Bus
    caught_up: Callable[[], bool]


@dataclass(frozen=True)
class StageSpec:
    """The Kafka stage: what it reads (several topics are read as one stream) and where each output type goes."""

    consumes: Sequence[str]
    input_type: type[Message]
    produces: Mapping[type[Message], str]
    # Topics outputs may be routed to by content (Parts.route), beyond `produces`.
    also_produces: Sequence[str] = ()
    # Output types published only after the others are acknowledged: records that say the work is done.
    publish_last: Sequence[type[Message]] = ()


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    settings: type[ServiceSettings]
    api: ServiceDescriptor                       # the gRPC service it serves
    build: Callable[[ServiceSettings, Context], Parts]
    stage: StageSpec | None = None
    # Topics folded from the beginning into the service's state (Parts.fold), e.g. the gateway's progress.
    follows: Mapping[str, type[Message]] = field(default_factory=dict)
    # Topics the service publishes to from its RPCs (e.g. the gateway's problems).
    publishes: Sequence[str] = ()

    @property
    def topics(self) -> list[str]:
        """Every topic the service touches, read off its declaration."""
        stage = self.stage
        names = [*stage.consumes, *stage.produces.values(), *stage.also_produces] if stage else []
        return list(dict.fromkeys([*names, *self.follows, *self.publishes]))


@dataclass
class Parts:
    """What a built service contributes; the runtime wires it."""

    rpcs: Mapping[str, Callable]                  # gRPC method name -> function(request) -> response
    process: Callable[[Sequence[Message]], Sequence[Message]] | None = None  # the stage's logic: a flat list out
    route: Callable[[Message], str | None] | None = None   # content-based routing (else by type, `produces`)
    held_ids: Callable[[], set[str]] | None = None         # inputs a stateful stage still holds (never committed)
    on_tick: Callable[[], Sequence[Message]] | None = None  # time-driven outputs, asked every poll
    fold: Callable[[Message], None] | None = None          # folds records of the `follows` topics
    check: Callable[[Message], None] | None = None         # raises InvalidInput (TooLarge) for a bad input record
    release: Callable[[set[str]], None] | None = None      # held inputs whose partitions moved to another replica
    background: Sequence[Callable[[threading.Event], None]] = ()
    on_stop: Callable[[], None] | None = None
