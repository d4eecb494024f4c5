"""The interfaces model-using services call. Which engine runs underneath is a setting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

Conversation = Sequence[dict[str, str]]  # chat messages: {"role": ..., "content": ...}


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    token_count: int
    truncated: bool  # stopped at max_new_tokens rather than at end-of-sequence


class TextGenerator(Protocol):
    """Samples `params.n` completions for each conversation, with the model's own chat template."""

    model_name: str

    def generate(self, conversations: Sequence[Conversation], params: SamplingParams) -> list[list[Completion]]: ...
