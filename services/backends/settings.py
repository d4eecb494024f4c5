"""Settings every model-using service shares: which model, on which engine and device."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from services.backends.weights import DEFAULT_CACHE, REWARD_MINILM, SMOLLM2
from services.common.settings import ServiceSettings


class ModelSettings(ServiceSettings):
    model: str = Field(
        SMOLLM2, description="Model: 'smollm2-135m-instruct' (packaged), a local directory, or a Hugging Face id "
                             "(for the openai back end: the model name the endpoint serves)."
    )
    backend: Literal["transformers", "vllm", "openai"] = Field(
        "transformers", description="Inference engine: transformers (CPU/GPU), vllm (GPU, `gpu` extra), or openai "
                                    "(an OpenAI-compatible HTTP endpoint; generation only)."
    )
    device: str = Field("cpu", description="Torch device, e.g. cpu or cuda:0.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weight dtype.")
    torch_threads: int = Field(
        1, ge=1, le=256, description="CPU threads for torch; several services on few cores starve each other above 1."
    )
    max_batch_sequences: int = Field(64, ge=1, description="Most sequences in one forward/generate pass.")
    max_batch_tokens: int = Field(8192, ge=64, description="Token budget of one scoring pass, padding included.")
    trust_remote_code: bool = Field(False, description="Allow model repositories to run their own code.")
    model_cache_dir: Path = Field(DEFAULT_CACHE, description="Where converted and downloaded weights are kept.")
    # vllm
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="vllm: share of GPU memory it may take.")
    lora_adapter: str | None = Field(None, description="vllm: LoRA adapter directory applied to every request.")
    # openai
    endpoint: str = Field("http://127.0.0.1:8000/v1", description="openai: base URL of the chat completions API.")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai: environment variable holding the API key.")
    request_timeout_s: float = Field(120.0, gt=0, description="openai: time limit of one HTTP request.")
    max_concurrency: int = Field(8, ge=1, le=1024, description="openai: most requests in flight at once.")
    max_retries: int = Field(5, ge=0, le=20, description="openai: retries on 429/5xx/connection errors.")


class RewardModelSettings(ServiceSettings):
    reward_backend: Literal["transformers", "triton", "none"] = Field(
        "transformers", description="Where the outcome reward model runs: in this process, on a Triton server, or "
                                    "none (correctness only)."
    )
    reward_model: str = Field(
        REWARD_MINILM, description="Reward model: 'learnerfit-reward-minilm-v1' (built here on first use), a local "
                                   "directory or a Hugging Face id of a 1-output sequence-classification model. With "
                                   "triton, its tokenizer is loaded here and the name is recorded with each score."
    )
    reward_device: str = Field("cpu", description="Torch device of the in-process reward model.")
    reward_max_batch_sequences: int = Field(32, ge=1, le=1024, description="Most sequences per reward forward pass.")
    reward_max_length: int = Field(512, ge=16, description="Tokens of (question, solution) the reward model sees.")
    triton_url: str = Field("127.0.0.1:8001", description="triton: gRPC address of the Triton server.")
    triton_model: str = Field("reward_model", description="triton: model name in the Triton model repository.")
    triton_timeout_s: float = Field(60.0, gt=0, description="triton: time limit of one inference request.")
