"""A service from its spec, in this process: real gRPC on a free port, its stage and followers running against the
real broker, on topics of its own (a fresh topic prefix)."""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from typing import Any

from learnerfit.local.processes import channel
from learnerfit.local.stack import merged
from learnerfit.runtime.app import Service, serving
from learnerfit.runtime.bus import Bus
from learnerfit.runtime.spec import ServiceSpec
from learnerfit.v1 import services_pb2_grpc


def own_group(service: str) -> str:
    """A consumer group of the test's own: on the shared broker, a group an earlier test left behind (the fuzz test
    runs every service with its stage) can keep a new member unassigned for minutes (Tansu)."""
    return f"{service}-{uuid.uuid4().hex[:8]}"


def settings_for(spec: ServiceSpec, broker, prefix: str | None = None, **sections: Any):
    wiring = {"bus": {"bootstrap_servers": broker.bootstrap_servers, "topic_prefix": prefix or f"t{uuid.uuid4().hex[:8]}-",
                      "session_timeout_ms": 6000, "topic_partitions": 1},
              "grpc": {"port": 0, "workers": 4}, "shutdown_grace_s": 5}
    return spec.settings(**merged(wiring, sections))


@contextmanager
def running(spec: ServiceSpec, broker, *, loops: bool = True, prefix: str | None = None, **sections: Any):
    """Yields (service, stub, bus): the service (with its loops, unless loops=False), a stub of its API, and a bus
    on the same topics."""
    settings = settings_for(spec, broker, prefix, **sections)
    bus = Bus(broker.bootstrap_servers, client_id=f"{spec.name}-test", session_timeout_ms=6000,
              topic_prefix=settings.bus.topic_prefix)
    stub_type = getattr(services_pb2_grpc, f"{spec.api.name}Stub")
    with serving(spec, settings) if loops else _built(spec, settings) as service:
        service.wait_ready()  # as a client would: a service that folds topics answers UNAVAILABLE until caught up
        try:
            with channel(service.target) as ch:
                yield service, stub_type(ch), bus
        finally:
            bus.close()


@contextmanager
def _built(spec: ServiceSpec, settings):
    """The service without its stage and background loops; its follower runs (its state is the topics')."""
    service, stop = Service(spec, settings), threading.Event()
    if service.follower is not None:
        service.follower.start(stop)
        threading.Thread(target=service.serve_once_caught_up, args=(stop,), daemon=True).start()
    try:
        yield service
    finally:
        stop.set()
        service.close()
