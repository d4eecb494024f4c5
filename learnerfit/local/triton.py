"""A local Triton Inference Server serving the reward model, for development and tests.

The `tritonserver` binary and its python backend come from the PyPI wheel
nvidia-pytriton, installed apart from the project's packages (`make` puts it in
.venv/triton with --no-deps: its Python side pins numpy<2, which we do not use).
Production runs NVIDIA's Triton image with the same model repository layout
(deploy/triton/reward_model).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from learnerfit.local.processes import free_port, stop_process

def triton_home() -> Path:
    """Where nvidia-pytriton was installed (LEARNERFIT_TRITON_HOME, default <venv>/triton)."""
    home = Path(os.environ.get("LEARNERFIT_TRITON_HOME", Path(sys.prefix) / "triton"))
    if not (home / "pytriton" / "tritonserver" / "bin" / "tritonserver").is_file():
        raise RuntimeError(f"no tritonserver under {home}: run `make venv` (installs nvidia-pytriton there) or set "
                           "LEARNERFIT_TRITON_HOME")
    return home


class TritonServer:
    """Runs the bundled tritonserver on free loopback ports over a model repository."""

    def __init__(self, model_repository: Path, work_dir: Path, log_path: Path | None = None):
        self.model_repository = Path(model_repository)
        self.work_dir = Path(work_dir)
        self.log_path = log_path or self.work_dir / "tritonserver.log"
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        self.url = f"127.0.0.1:{self.grpc_port}"
        self.process: subprocess.Popen | None = None

    def _backends(self, server_root: Path) -> Path:
        # The python backend needs the stub built for this interpreter beside it.
        backends = self.work_dir / "backends"
        python = backends / "python"
        python.mkdir(parents=True, exist_ok=True)
        for source in (server_root / "backends" / "python").iterdir():
            if source.is_file():
                shutil.copy2(source, python / source.name)
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        shutil.copy2(server_root / "python_backend_stubs" / version / "triton_python_backend_stub", python)
        return backends

    def start(self, timeout_s: float = 120.0) -> TritonServer:
        import tritonclient.grpc as triton_grpc

        home = triton_home()
        server_root = home / "pytriton" / "tritonserver"
        env = dict(os.environ)
        # The stub loads libpython dynamically, and the wheel's own libraries sit in nvidia_pytriton.libs.
        env["LD_LIBRARY_PATH"] = ":".join(
            p for p in (sysconfig.get_config_var("LIBDIR"), str(home / "nvidia_pytriton.libs"),
                        env.get("LD_LIBRARY_PATH", "")) if p)
        command = [str(server_root / "bin" / "tritonserver"), f"--model-repository={self.model_repository}",
                   f"--backend-directory={self._backends(server_root)}", f"--grpc-port={self.grpc_port}",
                   f"--http-port={self.http_port}", f"--metrics-port={self.metrics_port}",
                   "--allow-metrics=false", "--exit-timeout-secs=5"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env, start_new_session=True)
        client = triton_grpc.InferenceServerClient(self.url)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"tritonserver exited with code {self.process.returncode}; last lines of "
                                       f"{self.log_path}:\n{_tail(self.log_path)}")
                try:
                    if client.is_server_ready():
                        return self
                except Exception:  # not listening yet
                    pass
                time.sleep(0.2)
        finally:
            client.close()
        self.stop()
        raise TimeoutError(f"tritonserver not ready within {timeout_s}s; see {self.log_path}")

    def stop(self) -> None:
        stop_process(self.process, grace_s=10)

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
