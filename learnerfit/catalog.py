"""The catalog of services: every deployable, declared once, in the order a stack starts them.

Each entry says what a service's own spec (its ServiceSpec: settings, API, topics) cannot: where that spec lives
(imported only when asked, so the CLI and the local stack never import a service), whose gRPC APIs it calls, whether
outside clients call it, and what its pod needs. The local stack, `learnerfit serve`, the manifest generator and
the settings reference read this catalog; none keeps a list of its own. Adding a service is its module plus one
entry here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    """What a service's pod needs in a cluster."""

    cpu: str
    memory: str
    model: bool = False         # loads a model: long startup, the model cache, a GPU in the gpu overlay
    checkpoints: str = ""       # "rw" or "ro": the checkpoint volume the trainer writes and the learner pods read
    scale_on_lag: bool = False  # stateless stage: KEDA scales it on its consumer group's lag


@dataclass(frozen=True)
class Service:
    name: str
    module: str                     # the module holding SPEC, imported only when the spec is asked for
    pod: Pod
    calls: tuple[str, ...] = ()     # services whose gRPC API it calls; its settings section of that name has `target`
    api_clients: bool = False       # clients outside the pipeline call its API (the CLI, a study job)
    # Settings the local stack gives it over its cluster defaults: one machine and one disk change what it needs.
    on_one_machine: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> Any:
        """Its ServiceSpec (learnerfit.runtime.spec), from its module."""
        return importlib.import_module(self.module).SPEC


class Catalog:
    """Services by name, in start order: downstream first, so every consumer is in place when the gateway opens,
    and a called service before its callers."""

    def __init__(self, services: tuple[Service, ...]):
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise ValueError(f"a service is listed twice: {names}")
        for service in services:
            unknown = [c for c in service.calls if c not in names]
            if unknown:
                raise ValueError(f"{service.name} calls {', '.join(unknown)}, which the catalog does not list")
            later = [c for c in service.calls if names.index(c) > names.index(service.name)]
            if later:
                raise ValueError(f"{service.name} calls {', '.join(later)}, listed after it: callees start first")
        self._services = services

    def __iter__(self) -> Iterator[Service]:
        return iter(self._services)

    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._services)

    def get(self, name: str) -> Service:
        for service in self._services:
            if service.name == name:
                return service
        raise KeyError(f"no service {name!r} in the catalog; one of {', '.join(self.names())}")

    def callers_of(self, name: str) -> tuple[str, ...]:
        """The services that call `name`'s gRPC API."""
        return tuple(s.name for s in self._services if name in s.calls)

    def with_service(self, service: Service) -> Catalog:
        """This catalog and one more service, started last (e.g. a stage of your own)."""
        return Catalog((*self._services, service))


CATALOG = Catalog((
    Service("registry", "services.registry", Pod("100m", "256Mi", checkpoints="rw"), api_clients=True),
    # On one machine the trainer writes the registry's index itself; in a cluster it registers through the registry
    # service, the index's one writer.
    Service("trainer", "services.trainer", Pod("2", "8Gi", model=True, checkpoints="rw"), calls=("registry",),
            api_clients=True, on_one_machine={"registry": {"target": ""}}),
    Service("curator", "services.curator", Pod("250m", "512Mi"), api_clients=True),
    Service("refiner", "services.refiner", Pod("500m", "2Gi", model=True, scale_on_lag=True)),
    Service("style_aligner", "services.style_aligner", Pod("500m", "2Gi", model=True, scale_on_lag=True)),
    # The scorers take API clients too: a study scores the training sets it writes itself (its control and register
    # arms) as the pipeline scores candidates.
    Service("drift_scorer", "services.drift_scorer", Pod("1", "3Gi", model=True, checkpoints="ro", scale_on_lag=True),
            calls=("registry",), api_clients=True),
    Service("reward_scorer", "services.reward_scorer", Pod("1", "2Gi", model=True, scale_on_lag=True),
            api_clients=True),
    Service("generator", "services.generator", Pod("1", "3Gi", model=True, checkpoints="ro", scale_on_lag=True),
            calls=("registry",)),
    Service("gateway", "services.gateway", Pod("250m", "512Mi"), api_clients=True),
))
