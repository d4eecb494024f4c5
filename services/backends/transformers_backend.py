"""The transformers back end (CPU here, GPU in production): batched sampling with the model's chat template."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from services.backends.base import Completion, Conversation, SamplingParams
from services.backends.weights import DEFAULT_CACHE, resolve_model

log = logging.getLogger(__name__)


def load_causal_lm(spec: str, *, device: str, dtype: str, trust_remote_code: bool, cache_dir: Path = DEFAULT_CACHE):
    """Loads tokenizer and model from safetensors only; left padding for batched generation."""
    source = resolve_model(spec, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=getattr(torch, dtype), use_safetensors=True, trust_remote_code=trust_remote_code
    )
    model.to(device).eval()
    return tokenizer, model


class TransformersGenerator:
    """Samples N completions per conversation; all conversations of a call share one generate() pass."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        torch_threads: int = 1,
        max_batch_sequences: int = 64,
        trust_remote_code: bool = False,
        cache_dir: Path = DEFAULT_CACHE,
    ):
        if device == "cpu":
            torch.set_num_threads(torch_threads)
        self.model_name = model
        self.device = device
        self.max_batch_sequences = max_batch_sequences
        self.tokenizer, self.model = load_causal_lm(
            model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, cache_dir=cache_dir
        )
        self._eos_ids = _eos_ids(self.tokenizer, self.model)
        self._lock = threading.Lock()  # one forward pass at a time: gRPC calls and the stage share the model

    def render(self, conversation: Conversation) -> str:
        """The exact prompt text the model sees (the model's own chat template)."""
        return self.tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=True)

    def generate(self, conversations: Sequence[Conversation], params: SamplingParams) -> list[list[Completion]]:
        prompts = [self.render(c) for c in conversations]
        per_call = max(1, self.max_batch_sequences // max(params.n, 1))
        results: list[list[Completion]] = []
        with self._lock:
            torch.manual_seed(params.seed)
            for start in range(0, len(prompts), per_call):
                results.extend(self._generate_chunk(prompts[start : start + per_call], params))
        return results

    def _generate_chunk(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sampling = params.temperature > 0
        with torch.inference_mode():
            output = self.model.generate(
                **encoded,
                do_sample=sampling,
                temperature=params.temperature if sampling else None,
                top_p=params.top_p if sampling else None,
                top_k=0 if sampling else None,  # no top-k cut: the paper samples the full distribution
                max_new_tokens=params.max_new_tokens,
                num_return_sequences=params.n,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self._eos_ids,
            )
        generated = output[:, encoded["input_ids"].shape[1] :].tolist()
        completions = [self._completion(ids, params.max_new_tokens) for ids in generated]
        return [completions[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]

    def _completion(self, ids: list[int], max_new_tokens: int) -> Completion:
        end = next((i for i, t in enumerate(ids) if t in self._eos_ids), None)
        kept = ids if end is None else ids[:end]
        text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
        return Completion(text=text, token_count=len(kept), truncated=end is None and len(ids) >= max_new_tokens)


def _eos_ids(tokenizer, model) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
