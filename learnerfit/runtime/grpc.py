"""The gRPC server every service runs: health checking, reflection, size limits, error mapping, logs, metrics.

Errors follow the standard codes so a client can act on them (learnerfit/errors.py
says which error means what); they are mapped here, once, for every service.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from contextvars import ContextVar

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from learnerfit.errors import ERRORS, InvalidInput, Unavailable
from learnerfit.runtime import metrics

log = logging.getLogger(__name__)


def status_of(error: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message for an exception raised while serving a call: each error a client
    can act on travels as the code it names (learnerfit/errors.py). Anything else is a bug: INTERNAL, with an id to
    find in the log, and no exception text sent to the client."""
    if isinstance(error, ERRORS):
        return grpc.StatusCode[error.status], str(error)
    error_id = uuid.uuid4().hex[:12]
    log.error("internal error %s", error_id, exc_info=error, extra={"error": error_id})
    return grpc.StatusCode.INTERNAL, f"internal error {error_id}; see the service's log"


class ServingInterceptor(grpc.ServerInterceptor):
    """Wraps every call: maps errors to status codes, logs the outcome and counts it by method and code."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None and handler.unary_stream is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _serve_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_stream_rpc_method_handler(
            _serve_stream(method, handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class TokenInterceptor(grpc.ServerInterceptor):
    """Asks every call for `authorization: Bearer <token>` and answers UNAUTHENTICATED without it. Health checks
    are exempt: the kubelet's gRPC probes send no metadata."""

    def __init__(self, token: str):
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(f"/{health.SERVICE_NAME}/"):
            return continuation(handler_call_details)
        sent = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(sent.encode(), self._expected):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None

        def refuse(_request, context):
            metrics.GRPC_CALLS.labels(handler_call_details.method, "UNAUTHENTICATED").inc()
            why = "the bearer token is wrong" if sent else \
                "a bearer token is required (metadata authorization: Bearer <token>)"
            context.abort(grpc.StatusCode.UNAUTHENTICATED, why)

        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(refuse, request_deserializer=handler.request_deserializer)
        return grpc.unary_unary_rpc_method_handler(refuse, request_deserializer=handler.request_deserializer)


def server_credentials(cert_file, key_file, client_ca_file=None) -> grpc.ServerCredentials:
    """TLS from PEM files; with a client CA, callers must present a certificate it signed (mutual TLS)."""
    client_ca = client_ca_file.read_bytes() if client_ca_file else None
    return grpc.ssl_server_credentials([(key_file.read_bytes(), cert_file.read_bytes())],
                                       root_certificates=client_ca, require_client_auth=client_ca is not None)


def _record(method: str, started: float, code: grpc.StatusCode) -> None:
    metrics.GRPC_CALLS.labels(method, code.name).inc()
    metrics.GRPC_LATENCY.labels(method).observe(time.perf_counter() - started)
    level = logging.INFO if code == grpc.StatusCode.OK or method.startswith("/grpc.") else logging.WARNING
    log.log(level, "%s %s in %.3fs", method, code.name, time.perf_counter() - started)


def _serve_unary(method: str, behaviour: Callable):
    def wrapped(request, context):
        started, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            return behaviour(request, context)
        except Exception as exc:
            code, message = status_of(exc)
            context.abort(code, message)  # raises: the call ends with this status
        finally:
            _record(method, started, code)

    return wrapped


def _serve_stream(method: str, behaviour: Callable):
    def wrapped(request, context):
        started, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            yield from behaviour(request, context)
        except Exception as exc:
            code, message = status_of(exc)
            context.abort(code, message)
        finally:
            _record(method, started, code)

    return wrapped


_CALL_ACTIVE: ContextVar[Callable[[], bool]] = ContextVar("call_active", default=lambda: True)


def call_active() -> bool:
    """Inside a server-streaming function: False once its client has gone away (cancelled, disconnected, past its
    deadline), so a stream that waits for records can stop and free its worker."""
    return _CALL_ACTIVE.get()()


def _parsing(request_type: type[Message], service: str, ready: Callable[[], bool] | None
             ) -> Callable[[bytes], Message]:
    """The request from its bytes, in the handler rather than as gRPC's deserializer: a request that does not parse
    (a string field that is not UTF-8, say) is the caller's error, INVALID_ARGUMENT, where gRPC would answer INTERNAL.
    A service not ready yet answers UNAVAILABLE before it looks at the request."""
    def parse(data: bytes) -> Message:
        if ready is not None and not ready():
            raise Unavailable(f"{service} is starting: still reading its topics up to where they ended at its "
                              "start; retry shortly")
        try:
            return request_type.FromString(data)
        except DecodeError as exc:
            raise InvalidInput("request", f"not a valid {request_type.DESCRIPTOR.full_name} ({exc}); text fields must "
                                          "be UTF-8") from None
    return parse


def _streaming(function: Callable, parse: Callable[[bytes], Message]) -> Callable:
    def serve(request, context):
        _CALL_ACTIVE.set(context.is_active)
        yield from function(parse(request))
    return serve


def service_handler(service: ServiceDescriptor, methods: Mapping[str, Callable],
                    ready: Callable[[], bool] | None = None) -> grpc.GenericRpcHandler:
    """A handler for `service` whose methods are plain functions from request to response (or to an iterator of
    responses, for a server-streaming method); they never see a gRPC context (a stream asks `call_active()`).
    Until `ready()` says so, every call is answered UNAVAILABLE (the service is still rebuilding its state)."""
    missing = set(service.methods_by_name) - set(methods)
    if missing:
        raise TypeError(f"{service.full_name}: no function for {', '.join(sorted(missing))}")
    handlers = {}
    for name, function in methods.items():
        method = service.methods_by_name[name]
        parse = _parsing(message_factory.GetMessageClass(method.input_type), service.full_name, ready)
        response_type = message_factory.GetMessageClass(method.output_type)
        if method.server_streaming:
            handlers[name] = grpc.unary_stream_rpc_method_handler(
                _streaming(function, parse), response_serializer=response_type.SerializeToString)
        else:
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                lambda request, _context, f=function, p=parse: f(p(request)),
                response_serializer=response_type.SerializeToString)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


class GrpcServer:
    """A started gRPC server with health and reflection for the given service names."""

    def __init__(self, host: str, port: int, *, workers: int, max_message_bytes: int, security=None):
        """`security`: the service's GrpcSettings (TLS, mutual TLS, bearer token, reflection); None: plaintext,
        no token, reflection on (tests and tools)."""
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        interceptors: list[grpc.ServerInterceptor] = []
        if security is not None and security.auth_token_file is not None:
            # Checked first: a refused call is not logged as the method's own outcome.
            interceptors.append(TokenInterceptor(security.auth_token_file.read_text().strip()))
        interceptors.append(ServingInterceptor())
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            interceptors=interceptors,
            options=options,
        )
        self.reflection = security is None or security.reflection
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        # Health alone, in plaintext, for probes that cannot speak TLS or send a token.
        self.health_server, self.health_port = None, None
        if security is not None and security.health_port >= 0:
            self.health_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"))
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
            self.health_port = self.health_server.add_insecure_port(f"{host}:{security.health_port}")
        if security is not None and security.tls_cert_file is not None:
            credentials = server_credentials(security.tls_cert_file, security.tls_key_file, security.tls_client_ca_file)
            self.port = self.server.add_secure_port(f"{host}:{port}", credentials)
        else:
            self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {host}:{port}")
        self._names: list[str] = []

    def add(self, handler: grpc.GenericRpcHandler, service_names: Iterable[str]) -> None:
        self.server.add_generic_rpc_handlers((handler,))
        self._names.extend(service_names)

    def start(self, serving: bool = True) -> None:
        """Starts serving calls; health says SERVING now, or (`serving` False) once set_serving(True) is called."""
        if self.reflection:
            reflection.enable_server_reflection(
                [*self._names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
            )
        self.server.start()
        if self.health_server is not None:
            self.health_server.start()
        self.set_serving(serving)

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self._names]:
            self.health.set(name, status)

    def stop(self, grace_s: float) -> None:
        """Refuses new calls and lets in-flight ones finish within grace_s."""
        self.set_serving(False)
        self.server.stop(grace_s).wait()
        if self.health_server is not None:
            self.health_server.stop(0)
