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
from learnerfit.runtime.stage import StageLogic, StageSpec


@dataclass(frozen=True)
class Context:
    """What the runtime hands `build`: the bus, and a wait until the `follows` topics are folded up to now."""

    bus: Bus
    caught_up: Callable[[], bool]


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
    # Topics its replicas write and read to agree among themselves (a shared rate limit's leases).
    shares: Sequence[str] = ()

    @property
    def topics(self) -> list[str]:
        """Every topic the service touches, read off its declaration."""
        stage = self.stage
        names = [*stage.consumes, *stage.writes] if stage else []
        return list(dict.fromkeys([*names, *self.follows, *self.publishes, *self.shares]))


@dataclass
class Parts:
    """What a built service contributes; the runtime wires it."""

    rpcs: Mapping[str, Callable]                  # gRPC method name -> function(request) -> response
    stage: StageLogic | None = None               # the logic of the stage its spec declares
    fold: Callable[[Message], None] | None = None  # folds records of the `follows` topics
    background: Sequence[Callable[[threading.Event], None]] = ()
    on_stop: Callable[[], None] | None = None
