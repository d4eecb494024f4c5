"""The local stack: a Tansu broker and every service as its own process on loopback.

Used by `learnerfit up/down/run` and by the end-to-end tests. Each service gets
free ports, a log file and a YAML config file under the stack's directory (the
settings it is handed: `LEARNERFIT_CONFIG`), and one torch thread, so the model
services do not starve each other on a small machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from learnerfit.catalog import CATALOG, Catalog
from learnerfit.local.broker import STOP_SIGNAL as BROKER_STOP_SIGNAL
from learnerfit.local.broker import TansuBroker
from learnerfit.local.processes import free_port, wait_until_serving

STATE_FILE = "stack.json"


class StackError(RuntimeError):
    pass


@dataclass
class ServiceProcess:
    name: str
    pid: int
    grpc_target: str
    metrics_port: int
    log: str


@dataclass
class StackState:
    """What `learnerfit down` and `status` need to find a running stack again."""

    bootstrap_servers: str
    broker_pid: int
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return self.services["gateway"].grpc_target

    def save(self, directory: Path) -> None:
        (directory / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path) -> StackState:
        path = directory / STATE_FILE
        if not path.is_file():
            raise StackError(f"no local stack recorded in {path}; start one with `learnerfit up`")
        raw = json.loads(path.read_text())
        services = {name: ServiceProcess(**s) for name, s in raw.pop("services").items()}
        return cls(services=services, **raw)


class LocalStack:
    def __init__(
        self,
        directory: Path,
        *,
        common: Mapping[str, Any] | None = None,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        services: tuple[str, ...] | None = None,
        start_timeout_s: float = 300.0,
        catalog: Catalog = CATALOG,
    ):
        """`common`: settings every service gets; `config`: settings per service (nested sections, as in YAML);
        `services`: some of the catalog's (default: all, in its order)."""
        self.directory = directory
        self.common = dict(common or {})
        self.config = {k: dict(v) for k, v in (config or {}).items()}
        self.catalog = catalog
        self.services = services or catalog.names()
        for name in self.services:
            catalog.get(name)  # an unknown name fails here, naming the known ones
        self.start_timeout_s = start_timeout_s
        self.broker: TansuBroker | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.state: StackState | None = None

    def start(self, on_progress=lambda message: None) -> StackState:
        self.directory.mkdir(parents=True, exist_ok=True)
        logs = self.directory / "logs"
        logs.mkdir(exist_ok=True)
        self.broker = TansuBroker(log_path=logs / "broker.log").start()
        self.state = StackState(self.broker.bootstrap_servers, self.broker.process.pid)
        ports = {name: free_port() for name in self.services}
        try:
            for name in self.services:
                on_progress(f"starting {name}")
                self.state.services[name] = self._spawn(name, logs, ports)
            for name in self.services:
                on_progress(f"waiting for {name}")
                self._wait_serving(name)
        except BaseException:
            self.stop()
            raise
        self.state.save(self.directory)
        return self.state

    def kill(self, name: str) -> None:
        """SIGKILLs one service, as a crash would: no graceful shutdown, no final commit.
        It no longer counts as running for check_alive until restart()."""
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def terminate(self, name: str, grace_s: float = 30.0) -> None:
        """SIGTERM to one service, as a rollout stops a pod: it finishes in-flight work and leaves its group (SIGKILL
        after grace_s). It no longer counts as running until restart()."""
        process = self.processes.pop(name)
        stop_processes([process.pid], grace_s=grace_s)
        process.wait()

    def restart(self, name: str, wait: bool = True) -> None:
        """Starts a killed service again on the same ports and (unless not `wait`) waits until it serves."""
        old = self.state.services[name]
        ports = {n: int(s.grpc_target.rsplit(":", 1)[1]) for n, s in self.state.services.items()}
        self.state.services[name] = self._spawn(name, Path(old.log).parent, ports, old.metrics_port)
        if wait:
            self._wait_serving(name)
        self.state.save(self.directory)

    def add_replica(self, service: str) -> str:
        """Starts one more process of `service`, in the same consumer group (so the group rebalances its
        partitions over the replicas), on ports of its own; returns its name (e.g. "curator#2") for kill and
        restart."""
        name = f"{service}#{sum(_service_of(n) == service for n in self.state.services) + 1}"
        ports = {n: int(s.grpc_target.rsplit(":", 1)[1]) for n, s in self.state.services.items()}
        self.state.services[name] = self._spawn(name, self.directory / "logs", {**ports, name: free_port()})
        self._wait_serving(name)
        self.state.save(self.directory)
        return name

    def _spawn(self, name: str, logs: Path, ports: Mapping[str, int], metrics_port: int | None = None
               ) -> ServiceProcess:
        metrics_port = metrics_port or free_port()
        config_path = self.directory / "config" / f"{name}.yaml"
        config_path.parent.mkdir(exist_ok=True)
        config_path.write_text(yaml.safe_dump(self.service_config(name, ports, metrics_port), sort_keys=False))
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "LEARNERFIT_CONFIG": str(config_path.resolve())}
        log_path = logs / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", self.catalog.get(_service_of(name)).module], env=env, stdout=log, stderr=log,
                start_new_session=True,  # Ctrl-C reaches the CLI, which stops services in order
            )
        self.processes[name] = process
        return ServiceProcess(name, process.pid, f"127.0.0.1:{ports[name]}", metrics_port, str(log_path))

    def service_config(self, name: str, ports: Mapping[str, int], metrics_port: int) -> dict[str, Any]:
        """The settings one service is handed: the stack's wiring, then `common`, then its own `config`."""
        config: dict[str, Any] = {
            # Short sessions: Tansu completes a group join after about half of it.
            "bus": {"bootstrap_servers": self.broker.bootstrap_servers, "session_timeout_ms": 6000},
            "grpc": {"port": ports[name]},
            "log": {"metrics_port": metrics_port},
        }
        service = _service_of(name)
        for callee in self.catalog.get(service).calls:  # the services it calls, where this stack runs them
            if callee in ports:
                config[callee] = {"target": f"127.0.0.1:{ports[callee]}"}
        config = merged(config, self.catalog.get(service).on_one_machine)
        return merged(merged(config, self.common), self.config.get(service, {}))

    def _wait_serving(self, name: str) -> None:
        service = self.state.services[name]
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                wait_until_serving(service.grpc_target, timeout_s=2.0)
                return
            except TimeoutError:
                continue
        raise StackError(f"{name} not serving after {self.start_timeout_s:.0f}s; see {service.log}")

    def check_alive(self) -> None:
        """Raises with the tail of its log if any service process has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackError(
                    f"{name} exited with code {process.returncode}; last lines of {self.state.services[name].log}:\n"
                    + log_tail(Path(self.state.services[name].log))
                )

    def stop(self) -> None:
        """Stops services (upstream first, so in-flight work drains) and then the broker."""
        if self.state is not None:
            stop_processes([s.pid for s in reversed(self.state.services.values())])
        for process in self.processes.values():
            if process.poll() is None:
                process.wait(timeout=5)
        if self.broker:
            self.broker.stop()
        state_file = self.directory / STATE_FILE
        if state_file.exists():
            state_file.unlink()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_processes(pids: list[int], grace_s: float = 15.0, sig: int = signal.SIGTERM) -> None:
    """`sig` to each (SIGTERM: services finish in-flight work), then SIGKILL whatever is still alive after grace_s."""
    for pid in pids:
        _signal(pid, sig)
    deadline = time.monotonic() + grace_s
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)


def stop_recorded_stack(directory: Path) -> StackState:
    state = StackState.load(directory)
    stop_processes([s.pid for s in reversed(state.services.values())])
    stop_processes([state.broker_pid], grace_s=5, sig=BROKER_STOP_SIGNAL)
    (directory / STATE_FILE).unlink()
    return state


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dictionaries merged, `override` winning."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) \
            else value
    return out


def _service_of(name: str) -> str:
    """The service a process runs: "curator" for "curator" and for its replica "curator#2"."""
    return name.split("#", 1)[0]


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own children so they do not linger as zombies
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
