"""Small helpers for the local servers LearnerFit starts (broker, Triton, services): ports, channels, readiness,
stopping."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port free now, never one handed out before by this process, and below the kernel's ephemeral
    range (32768 and up on Linux): a port from bind(0) can be taken by some process's outgoing connection (a Kafka
    client's, say) before the service that was given it binds it."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 32_000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(process: subprocess.Popen | None, grace_s: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """`sig`, then SIGKILL if it has not exited within `grace_s`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_listening(process: subprocess.Popen, port: int, timeout_s: float, what: str) -> None:
    """Until `process` accepts connections on 127.0.0.1:`port`; raises RuntimeError if it exits first (`what` names
    it, with any hint), TimeoutError after timeout_s (the caller stops it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s}s")


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
