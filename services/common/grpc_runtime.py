"""The gRPC server every service runs: health checking, reflection, size limits, logging and metrics.

Errors follow the standard codes so a client can act on them: INVALID_ARGUMENT
names the field that was wrong, RESOURCE_EXHAUSTED is a limit, UNAVAILABLE is
worth retrying, NOT_FOUND names what was looked up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import metrics

log = logging.getLogger(__name__)


class InvalidArgument(ValueError):
    """Bad input from a client; `field` is the path of the offending field (e.g. "problems[2].question")."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


def abort_on_invalid(context: grpc.ServicerContext, exc: InvalidArgument) -> None:
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))


class _ObservingInterceptor(grpc.ServerInterceptor):
    """Logs each call's outcome and counts it in Prometheus, by method and status code."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None and handler.unary_stream is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _observe_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_stream_rpc_method_handler(
            _observe_stream(method, handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _outcome(context: grpc.ServicerContext, error: BaseException | None) -> str:
    code = context.code() if hasattr(context, "code") else None
    if code is not None:
        return code.name
    return "UNKNOWN" if error is not None and not isinstance(error, grpc.RpcError) else "OK"


def _record(method: str, started: float, context: grpc.ServicerContext, error: BaseException | None) -> None:
    code = _outcome(context, error)
    metrics.GRPC_CALLS.labels(method, code).inc()
    metrics.GRPC_LATENCY.labels(method).observe(time.perf_counter() - started)
    level = logging.INFO if code == "OK" or method.startswith("/grpc.") else logging.WARNING
    log.log(level, "%s %s in %.3fs", method, code, time.perf_counter() - started)


def _observe_unary(method: str, behaviour: Callable):
    def wrapped(request, context):
        started, error = time.perf_counter(), None
        try:
            return behaviour(request, context)
        except BaseException as exc:
            error = exc
            raise
        finally:
            _record(method, started, context, error)

    return wrapped


def _observe_stream(method: str, behaviour: Callable):
    def wrapped(request, context):
        started, error = time.perf_counter(), None
        try:
            yield from behaviour(request, context)
        except BaseException as exc:
            error = exc
            raise
        finally:
            _record(method, started, context, error)

    return wrapped


class GrpcServer:
    """A started gRPC server with health and reflection for the given service names."""

    def __init__(self, host: str, port: int, *, workers: int, max_message_bytes: int):
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            interceptors=[_ObservingInterceptor()],
            options=options,
        )
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {host}:{port}")
        self._names: list[str] = []

    def add(self, register: Callable[[grpc.Server], None], service_names: Iterable[str]) -> None:
        register(self.server)
        self._names.extend(service_names)

    def start(self) -> None:
        reflection.enable_server_reflection(
            [*self._names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.server.start()
        self.set_serving(True)

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self._names]:
            self.health.set(name, status)

    def stop(self, grace_s: float) -> None:
        """Refuses new calls and lets in-flight ones finish within grace_s."""
        self.set_serving(False)
        self.server.stop(grace_s).wait()


def channel(target: str, max_message_bytes: int = 16 * 1024 * 1024) -> grpc.Channel:
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
    )


def wait_until_serving(target: str, timeout_s: float, service: str = "") -> None:
    """Blocks until the server at target reports SERVING, or raises TimeoutError."""
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    with channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last_error = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as exc:
                last_error = exc.code().name
            time.sleep(0.2)
    raise TimeoutError(f"{target} not serving after {timeout_s:.0f}s ({last_error})")
