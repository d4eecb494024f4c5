"""The life of a service process: settings, logs, metrics, gRPC server, stage loop, followers, graceful shutdown.

A service module ends with `run(SPEC)`; everything here is shared by every service.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from pydantic import ValidationError

from learnerfit.runtime.bus import Bus
from learnerfit.runtime.follow import TopicFollower
from learnerfit.runtime.grpc import GrpcServer, service_handler
from learnerfit.runtime.logs import configure_logging
from learnerfit.runtime.metrics import serve_metrics
from learnerfit.runtime.runner import RetryPolicy, StageRunner
from learnerfit.runtime.settings import ServiceSettings, StageSettings, settings_table
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.runtime.stage import Stage

log = logging.getLogger(__name__)
DEAD_LETTER = "dead-letter"  # any stage: records that can never be processed, with the reason


def describe(spec: ServiceSpec) -> str:
    """What --help says after the description: the API, the topics, every setting."""
    lines = [f"gRPC: {spec.api.full_name} ({', '.join(spec.api.methods_by_name)})"]
    if spec.stage:
        lines.append(f"consumes: {', '.join(spec.stage.consumes)}")
        lines.append(f"produces: {', '.join(spec.stage.writes)}")
    if spec.follows:
        lines.append(f"follows (from the beginning): {', '.join(spec.follows)}")
    if spec.publishes:
        lines.append(f"publishes: {', '.join(spec.publishes)}")
    lines += ["", "Settings (defaults < YAML file in LEARNERFIT_CONFIG < environment):", settings_table(spec.settings)]
    return "\n".join(lines)


def load_settings(spec: ServiceSpec, argv: Sequence[str] | None = None) -> ServiceSettings:
    """Parses --help / --print-config and builds the settings, or exits with a message naming the bad setting."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{spec.name}",
                                     description=(spec.settings.__doc__ or "").strip(), epilog=describe(spec),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--print-config", action="store_true", help="print the effective settings as JSON and exit")
    args = parser.parse_args(argv)
    try:
        settings = spec.settings()
    except (ValidationError, FileNotFoundError) as exc:
        print(f"{spec.name}: invalid settings:\n{exc}", file=sys.stderr)
        sys.exit(2)
    if args.print_config:
        print(settings.model_dump_json(indent=2))
        sys.exit(0)
    return settings


class Service:
    """A built service: its bus, its parts, its gRPC server (serving), its loops (not started)."""

    def __init__(self, spec: ServiceSpec, settings: ServiceSettings):
        self.spec, self.settings = spec, settings
        self.bus = Bus(settings.bus.bootstrap_servers, client_id=spec.name,
                       session_timeout_ms=settings.bus.session_timeout_ms, topic_prefix=settings.bus.topic_prefix,
                       max_record_bytes=settings.bus.max_record_bytes,
                       compression=None if settings.bus.compression == "none" else settings.bus.compression,
                       security=settings.bus.client_security(), publish_timeout_s=settings.bus.publish_timeout_s)
        if settings.bus.create_topics and spec.topics:
            self.bus.ensure_topics([*spec.topics, DEAD_LETTER], settings.bus.topic_partitions,
                                   settings.bus.topic_replication)
        self.follower = TopicFollower(self.bus, spec.follows, lambda message: self.parts.fold(message)) \
            if spec.follows else None
        self.parts = spec.build(settings, Context(self.bus, self.follower.caught_up if self.follower else lambda: True))
        self.server = GrpcServer(settings.grpc.host, settings.grpc.port, workers=settings.grpc.workers,
                                 max_message_bytes=settings.grpc.max_message_bytes, security=settings.grpc)
        # A service whose answers come from folded topics is not ready, to its callers and to gRPC health (the
        # readiness probe), until it has read them to where they ended at its start: a restarted gateway would
        # otherwise answer NOT_FOUND for live batches and take a retried submission for a new one.
        ready = (lambda: self.follower.wait_ready(0)) if self.follower is not None else None
        self.server.add(service_handler(spec.api, self.parts.rpcs, ready), [spec.api.full_name])
        self.server.start(serving=ready is None)

    @property
    def target(self) -> str:
        return f"{self.settings.grpc.host}:{self.server.port}"

    def loops(self) -> list[Callable[[threading.Event], None]]:
        """The service's loops: background work, the follower, the stage runner."""
        loops = list(self.parts.background)
        if self.follower is not None:
            loops += [self.follower.run, self.serve_once_caught_up]
        if self.spec.stage is not None:
            # A stage that also follows topics (the curator's decisions) starts once their state is folded.
            ready = self.follower.caught_up if self.follower is not None else None
            loops.append(_runner(self.spec, self.parts, self.bus, self.settings, ready).run)
        return loops

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Blocks until the service answers calls (what it folds read up to where it ended at its start), as a client
        waits for SERVING; TimeoutError after timeout_s."""
        if self.follower is not None and not self.follower.wait_ready(timeout_s):
            raise TimeoutError(f"{self.spec.name} did not catch up with {', '.join(self.spec.follows)} in "
                               f"{timeout_s:.0f}s")

    def serve_once_caught_up(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.follower.wait_ready(0.5):
                log.info("%s caught up with %s: serving", self.spec.name, ", ".join(self.spec.follows),
                         extra={"service": self.spec.name})
                self.server.set_serving(True)
                return

    def close(self, grace_s: float = 0.0) -> None:
        self.server.stop(grace_s)
        if self.parts.on_stop:
            self.parts.on_stop()
        self.bus.close()


@contextmanager
def serving(spec: ServiceSpec, settings: ServiceSettings, stop: threading.Event | None = None,
            failed: threading.Event | None = None) -> Iterator[Service]:
    """The service built, serving gRPC, its loops running in threads; on exit (or `stop`), in-flight work is
    finished within shutdown_grace_s, then everything closes. A loop that dies sets `failed` and `stop`."""
    stop = stop or threading.Event()
    failed = failed or threading.Event()
    service = Service(spec, settings)
    threads = [threading.Thread(target=_guarded, args=(loop, stop, failed), name=f"{spec.name}-loop{i}", daemon=True)
               for i, loop in enumerate(service.loops())]
    for thread in threads:
        thread.start()
    try:
        yield service
    finally:
        stop.set()
        service.server.set_serving(False)
        for thread in threads:
            thread.join(timeout=settings.shutdown_grace_s)
        service.close(settings.shutdown_grace_s)


def run(spec: ServiceSpec, argv: Sequence[str] | None = None) -> None:
    """The process: settings, logs, metrics, the service until SIGTERM, then a graceful stop."""
    settings = load_settings(spec, argv)
    configure_logging(settings.log.level, settings.log.format, spec.name)
    log.info("effective config %s", settings.model_dump_json(), extra={"service": spec.name})
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: every thread's stack to the log
    stop, failed = threading.Event(), threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serve_metrics(settings.log.metrics_port)
    with serving(spec, settings, stop, failed) as service:
        log.info("%s serving gRPC on %s", spec.name, service.target, extra={"service": spec.name})
        stop.wait()
        log.info("%s stopping: finishing in-flight work", spec.name, extra={"service": spec.name})
    log.info("%s stopped", spec.name, extra={"service": spec.name})
    sys.exit(1 if failed.is_set() else 0)


def _runner(spec: ServiceSpec, parts: Parts, bus: Bus, settings: ServiceSettings,
            ready: Callable[[], bool] | None) -> StageRunner:
    stage_settings = getattr(settings, "stage", None)
    if not isinstance(stage_settings, StageSettings) or parts.stage is None:
        raise TypeError(f"{spec.name} declares a stage but has no `stage` settings section or its build returns no "
                        "stage logic (Parts.stage)")
    retry = RetryPolicy(stage_settings.retry_budget_s, stage_settings.retry_initial_s, stage_settings.retry_max_s)
    return StageRunner(Stage(spec.name, spec.stage, parts.stage), bus, group_id=stage_settings.group or spec.name,
                       dead_letter_topic=DEAD_LETTER, max_batch=stage_settings.max_batch,
                       max_wait_s=stage_settings.max_wait_s, dedupe_window=stage_settings.dedupe_window, retry=retry,
                       ready=ready)


def _guarded(loop: Callable[[threading.Event], None], stop: threading.Event, failed: threading.Event) -> None:
    """A loop that dies takes the process down (non-zero exit), so its supervisor restarts it."""
    try:
        loop(stop)
    except Exception:
        log.exception("background loop crashed; stopping the service")
        failed.set()
        stop.set()
