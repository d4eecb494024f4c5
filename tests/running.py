"""A service from its spec, in this process: real gRPC on a free port, its stage and followers running against the
real broker, on topics of its own (a fresh topic prefix)."""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from typing import Any

from learnerfit.local.processes import channel
from learnerfit.runtime.app import Service
from learnerfit.runtime.bus import Bus
from learnerfit.runtime.spec import ServiceSpec
from learnerfit.local.stack import merged


def fresh_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}-"


def settings_for(spec: ServiceSpec, broker, prefix: str | None = None, **sections: Any):
    wiring = {"bus": {"bootstrap_servers": broker.bootstrap_servers, "topic_prefix": prefix or fresh_prefix(),
                      "session_timeout_ms": 6000, "topic_partitions": 1},
              "grpc": {"port": 0, "workers": 4}}
    return spec.settings(**merged(wiring, sections))


@contextmanager
def running(spec: ServiceSpec, broker, *, loops: bool = True, prefix: str | None = None, **sections: Any):
    """Yields (service, stub, bus): the running service, a stub of its API, a bus on the same topics."""
    service = Service(spec, settings_for(spec, broker, prefix, **sections))
    stop = threading.Event()
    threads = [threading.Thread(target=loop, args=(stop,), daemon=True) for loop in service.loops()] if loops else []
    for thread in threads:
        thread.start()
    bus = Bus(broker.bootstrap_servers, client_id=f"{spec.name}-test", session_timeout_ms=6000,
              topic_prefix=service.settings.bus.topic_prefix)
    stub_type = getattr(__import__("learnerfit.v1.services_pb2_grpc", fromlist=["x"]), f"{spec.api.name}Stub")
    try:
        with channel(service.target) as ch:
            yield service, stub_type(ch), bus
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        service.close()
        bus.close()
