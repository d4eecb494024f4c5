"""Builds the back end a service's settings name; engines are imported only when selected."""

from __future__ import annotations

import os

from services.backends.base import LogProbScorer, RewardModel, TextGenerator
from services.backends.settings import ModelSettings, RewardModelSettings


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
    if settings.backend == "vllm":
        return _vllm_engine(settings, settings.model)
    if settings.backend == "openai":
        from services.backends.openai_backend import OpenAIChatGenerator

        return OpenAIChatGenerator(
            settings.endpoint,
            settings.model,
            api_key=os.environ.get(settings.api_key_env),
            timeout_s=settings.request_timeout_s,
            max_concurrency=settings.max_concurrency,
            max_retries=settings.max_retries,
        )
    raise ValueError(f"unknown back end {settings.backend!r}")


def make_logprob_scorer(settings: ModelSettings, model: str | None = None) -> LogProbScorer:
    """A scorer for `model` (default: the settings' model), e.g. another learner checkpoint."""
    model = model or settings.model
    if settings.backend == "transformers":
        from services.backends.transformers_backend import TransformersScorer

        return TransformersScorer(
            model,
            device=settings.device,
            dtype=settings.dtype,
            torch_threads=settings.torch_threads,
            max_batch_sequences=settings.max_batch_sequences,
            max_batch_tokens=settings.max_batch_tokens,
            trust_remote_code=settings.trust_remote_code,
            cache_dir=settings.model_cache_dir,
        )
    if settings.backend == "vllm":
        return _vllm_engine(settings, model)
    raise ValueError(f"back end {settings.backend!r} cannot score log-probs: use transformers or vllm")


def _vllm_engine(settings: ModelSettings, model: str):
    from services.backends.vllm_backend import VLLMEngine

    return VLLMEngine(
        model,
        dtype=settings.dtype,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        max_num_seqs=settings.max_batch_sequences,
        lora_adapter=settings.lora_adapter,
        trust_remote_code=settings.trust_remote_code,
        cache_dir=settings.model_cache_dir,
    )


def make_reward_model(settings: RewardModelSettings) -> RewardModel | None:
    if settings.reward_backend == "none":
        return None
    if settings.reward_backend == "transformers":
        from services.backends.reward import TransformersRewardModel

        return TransformersRewardModel(
            settings.reward_model, device=settings.reward_device,
            max_batch_sequences=settings.reward_max_batch_sequences, max_length=settings.reward_max_length,
        )
    if settings.reward_backend == "triton":
        from services.backends.triton_backend import TritonRewardModel

        return TritonRewardModel(
            settings.triton_url, settings.triton_model, model_name=settings.reward_model,
            tokenizer=settings.reward_model, max_batch_sequences=settings.reward_max_batch_sequences,
            max_length=settings.reward_max_length, timeout_s=settings.triton_timeout_s,
        )
    raise ValueError(f"unknown reward back end {settings.reward_backend!r}")
