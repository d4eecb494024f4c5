"""Settings of the registry service."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from services.backends.weights import DEFAULT_CACHE
from services.common.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    """Registry: lists and shows the learner checkpoints in a registry directory."""

    service_name: ClassVar[str] = "registry"

    registry_dir: Path = Field(DEFAULT_CACHE / "registry", description="Root of the checkpoint registry.")
