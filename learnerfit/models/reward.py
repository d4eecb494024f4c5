"""In-process reward model: a sequence-classification model with one output, batched by length."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from learnerfit.domain.inference import reward_text
from learnerfit.models.batching import length_sorted_batches, pad_batch
from learnerfit.models.timing import model_time
from learnerfit.models.weights import resolve_model


def load_reward_model(spec: str, *, device: str = "cpu", trust_remote_code: bool = False,
                      cache_dir: Path | None = None):
    source = resolve_model(spec, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, use_safetensors=True, trust_remote_code=trust_remote_code
    )
    if model.config.num_labels != 1:
        raise ValueError(f"reward model {spec!r} has {model.config.num_labels} outputs; a reward model has 1")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id  # decoder backbones find the last token by it
    return tokenizer, model.to(device).eval()


def encode_rewards(tokenizer, questions: Sequence[str], solutions: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each (question, solution) in the reward layout; shared by the in-process and Triton paths."""
    texts = [reward_text(q, s) for q, s in zip(questions, solutions, strict=True)]
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


class TransformersRewardModel:
    """Scores in this process; the reference the Triton path is checked against."""

    def __init__(self, model: str, *, device: str = "cpu", max_batch_sequences: int = 32, max_length: int = 512,
                 torch_threads: int = 1, trust_remote_code: bool = False, cache_dir: Path | None = None):
        if device == "cpu":
            torch.set_num_threads(torch_threads)
        self.model_name = model
        self.device = device
        self.max_batch_sequences = max_batch_sequences
        self.max_length = max_length
        self.tokenizer, self.model = load_reward_model(model, device=device, trust_remote_code=trust_remote_code,
                                                       cache_dir=cache_dir)
        self._lock = threading.Lock()

    def rewards(self, questions: Sequence[str], solutions: Sequence[str]) -> list[float]:
        encoded = encode_rewards(self.tokenizer, questions, solutions, self.max_length)
        scores = [0.0] * len(encoded)
        with self._lock, torch.inference_mode(), model_time("reward"):
            for batch in length_sorted_batches([len(e) for e in encoded], self.max_batch_sequences):
                ids, mask = pad_batch([encoded[i] for i in batch], self.tokenizer.pad_token_id)
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                for i, value in zip(batch, logits[:, 0].float().tolist(), strict=True):
                    scores[i] = value
        return scores
