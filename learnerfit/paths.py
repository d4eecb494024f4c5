"""Where LearnerFit keeps things on disk by default: one home for the cache root, below every layer."""

from __future__ import annotations

from pathlib import Path


def default_cache_dir() -> Path:
    """~/.cache/learnerfit: converted and built weights, and the default checkpoint registry."""
    return Path.home() / ".cache" / "learnerfit"


def default_registry_dir() -> Path:
    """~/.cache/learnerfit/registry: where the local stack's trainer registers and `learnerfit checkpoints` looks."""
    return default_cache_dir() / "registry"
