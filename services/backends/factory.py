"""Builds the back end a service's settings name."""

from __future__ import annotations

from services.backends.base import TextGenerator
from services.backends.settings import ModelSettings


def make_text_generator(settings: ModelSettings) -> TextGenerator:
    if settings.backend == "transformers":
        from services.backends.transformers_backend import TransformersGenerator

        return TransformersGenerator(
            settings.model,
            device=settings.device,
            dtype=settings.dtype,
            torch_threads=settings.torch_threads,
            max_batch_sequences=settings.max_batch_sequences,
            trust_remote_code=settings.trust_remote_code,
            cache_dir=settings.model_cache_dir,
        )
    raise ValueError(f"unknown back end {settings.backend!r}")
