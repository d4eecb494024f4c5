"""Counting an Oracle request's tokens where its endpoint reported none, with the model's own tokenizer."""

from __future__ import annotations

from pathlib import Path

from learnerfit.domain.inference import Conversation, TokenUsage
from learnerfit.domain.oracle.spend import TokenCounter, estimate_tokens
from learnerfit.models.chat import encode_reply
from learnerfit.models.settings import OracleSettings
from learnerfit.models.weights import resolve_model


def token_counter(settings: OracleSettings, cache_dir: Path) -> TokenCounter:
    """The Oracle's tokenizer where one is known (the setting, or the model of a local back end); else the estimate
    (about 4 characters a token, each output marked estimated)."""
    spec = settings.tokenizer or (settings.model if settings.backend in ("transformers", "vllm") else None)
    if spec is None:
        return estimate_tokens
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(spec, cache_dir),
                                              trust_remote_code=settings.trust_remote_code)

    def count(conversation: Conversation, text: str, generated: int) -> TokenUsage:
        prompt, reply = encode_reply(tokenizer, conversation, text)
        return TokenUsage(len(prompt), generated or len(reply), counted=True)

    return count
