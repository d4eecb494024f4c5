"""S3 storage for a local Tansu that keeps its data across its own restart: `s3rver`, an S3 server from the npm
registry that stores objects as files (installed by `make s3rver` into .venv/node).

The in-memory broker stays the default: it is faster, and a stack that stops starts
afresh. This is for trials of a broker restart, where the topics, the records and the
groups' committed offsets must still be there when it comes back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from learnerfit.local.processes import free_port, stop_process, wait_listening

S3RVER = Path(sys.prefix) / "node" / "node_modules" / ".bin" / "s3rver"  # where `make s3rver` puts it
KEY = "S3RVER"  # s3rver's fixed access key and secret


def s3rver_binary() -> Path:
    for candidate in (Path(os.environ.get("LEARNERFIT_S3RVER", "")), S3RVER, Path(shutil.which("s3rver")
                                                                                             or "")):
        if candidate.name and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("s3rver is missing: `make s3rver` installs it from the npm registry into .venv/node "
                       "(or set LEARNERFIT_S3RVER to its path)")


class S3Server:
    """s3rver on a free loopback port, its objects as files under `root`, with one bucket for the broker."""

    def __init__(self, root: Path, bucket: str = "tansu"):
        self.root = Path(root)
        self.bucket = bucket
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def storage_engine(self) -> str:
        """Tansu's --storage-engine for this bucket."""
        return f"s3://{self.bucket}/"

    def environment(self) -> dict[str, str]:
        """What Tansu's S3 client reads: where the server is, its keys, and that plain HTTP is fine on loopback."""
        return {"AWS_ENDPOINT": f"http://127.0.0.1:{self.port}", "AWS_ACCESS_KEY_ID": KEY,
                "AWS_SECRET_ACCESS_KEY": KEY, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}

    def start(self, timeout_s: float = 30.0) -> S3Server:
        self.root.mkdir(parents=True, exist_ok=True)
        command = [str(s3rver_binary()), "-d", str(self.root), "-a", "127.0.0.1", "-p", str(self.port), "--silent",
                   "--configure-bucket", self.bucket]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        try:
            wait_listening(self.process, self.port, timeout_s, "s3rver")
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
