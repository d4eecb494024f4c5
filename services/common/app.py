"""The life of a service process: settings, logs, metrics, gRPC server, stage loops, graceful shutdown.

A service's `__main__` is one call: `run_service(MySettings, build)`, where
`build` loads what the service needs and returns its servicers and stages.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from pydantic import ValidationError

from services.common.bus import Bus
from services.common.grpc_runtime import GrpcServer
from services.common.logs import configure_logging
from services.common.metrics import serve_metrics
from services.common.settings import ServiceSettings, StageSettings, settings_table
from services.common.stage_runner import Stage, StageRunner

log = logging.getLogger(__name__)


@dataclass
class ServiceParts:
    """What a service contributes: its gRPC servicers, its Kafka stages, the topics it needs."""

    register: Callable[[grpc.Server], None]
    service_names: Sequence[str]
    stages: Sequence[Stage] = ()
    topics: Sequence[str] = ()
    background: Sequence[Callable[[threading.Event], None]] = ()  # extra loops, e.g. the gateway's ledger
    on_stop: Callable[[], None] | None = None


def load_settings(settings_cls: type[ServiceSettings], argv: Sequence[str] | None = None) -> ServiceSettings:
    """Parses --help / --print-config and builds the settings, or exits with a message naming the bad setting."""
    parser = argparse.ArgumentParser(
        prog=f"python -m services.{settings_cls.service_name}",
        description=(settings_cls.__doc__ or "").strip(),
        epilog="Settings (defaults < YAML file in LEARNERFIT_CONFIG < environment):\n" + settings_table(settings_cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--print-config", action="store_true", help="print the effective settings as JSON and exit")
    args = parser.parse_args(argv)
    try:
        settings = settings_cls()
    except (ValidationError, FileNotFoundError) as exc:
        print(f"{settings_cls.service_name}: invalid settings:\n{exc}", file=sys.stderr)
        sys.exit(2)
    if args.print_config:
        print(json.dumps(settings.model_dump(), indent=2, default=str))
        sys.exit(0)
    return settings


def run_service(
    settings_cls: type[ServiceSettings],
    build: Callable[[ServiceSettings, Bus], ServiceParts],
    argv: Sequence[str] | None = None,
) -> None:
    settings = load_settings(settings_cls, argv)
    name = settings_cls.service_name
    configure_logging(settings.log_level, settings.log_format, name)
    log.info("effective config %s", json.dumps(settings.model_dump(), default=str), extra={"service": name})

    stop = threading.Event()
    failed = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    bus = Bus(settings.bootstrap_servers, client_id=name, session_timeout_ms=settings.consumer_session_timeout_ms)
    parts = build(settings, bus)
    if parts.topics:
        bus.ensure_topics([*parts.topics, settings.dead_letter_topic], settings.topic_partitions,
                          settings.topic_replication)
    serve_metrics(settings.metrics_port)

    server = GrpcServer(settings.grpc_host, settings.grpc_port, workers=settings.grpc_workers,
                        max_message_bytes=settings.grpc_max_message_bytes)
    server.add(parts.register, parts.service_names)
    server.start()
    log.info("%s serving gRPC on %s:%d", name, settings.grpc_host, server.port, extra={"service": name})

    loops = [_runner_loop(stage, bus, settings) for stage in parts.stages] + list(parts.background)
    threads = [threading.Thread(target=_guarded, args=(loop, stop, failed), name=f"{name}-loop{i}", daemon=True)
               for i, loop in enumerate(loops)]
    for thread in threads:
        thread.start()

    stop.wait()
    log.info("%s stopping: finishing in-flight work", name, extra={"service": name})
    server.set_serving(False)
    for thread in threads:
        thread.join(timeout=settings.shutdown_grace_s)
    server.stop(settings.shutdown_grace_s)
    if parts.on_stop:
        parts.on_stop()
    bus.close()
    log.info("%s stopped", name, extra={"service": name})
    sys.exit(1 if failed.is_set() else 0)


def _runner_loop(stage: Stage, bus: Bus, settings: ServiceSettings) -> Callable[[threading.Event], None]:
    if not isinstance(settings, StageSettings):
        raise TypeError(f"{type(settings).__name__} runs a stage but is not a StageSettings")
    runner = StageRunner(
        stage,
        bus,
        group_id=settings.consumer_group or stage.name,
        dead_letter_topic=settings.dead_letter_topic,
        max_batch=settings.max_batch,
        max_wait_s=settings.max_wait_s,
        dedupe_window=settings.dedupe_window,
    )
    return runner.run


def _guarded(loop: Callable[[threading.Event], None], stop: threading.Event, failed: threading.Event) -> None:
    """A loop that dies takes the process down (non-zero exit), so its supervisor restarts it."""
    try:
        loop(stop)
    except Exception:
        log.exception("background loop crashed; stopping the service")
        failed.set()
        stop.set()
