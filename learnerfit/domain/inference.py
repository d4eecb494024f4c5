"""What the domain asks of a model: generate, score log-probs, reward. Engines implement these in
learnerfit/models; which one runs underneath is a setting, never a branch in a stage."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

Conversation = Sequence[dict[str, str]]  # chat messages: {"role": ..., "content": ...}


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. `seed` seeds each prompt on its own (with the prompt's text and the sample's index), so a
    sample's text depends on its prompt, index, seed and model, never on which other prompts share the call."""

    n: int = 1
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        check_greedy(self.n, self.temperature, "n", "temperature")


def check_greedy(n: int, temperature: float, n_field: str, temperature_field: str) -> None:
    """The rule on every back end: greedy decoding (temperature 0) draws one sample. N > 1 greedy samples would be
    N copies (vLLM and `vllm serve` refuse them outright), which would pass for N independent tries in Avg@N and
    in curation's choice, so they are refused here, by name, before any engine sees them."""
    from learnerfit.errors import InvalidInput

    if temperature == 0 and n > 1:
        raise InvalidInput(f"{n_field}/{temperature_field}", f"{n} samples at temperature 0 (greedy) would be {n} "
                                                             "copies of one: use temperature > 0, or 1 sample")


@dataclass(frozen=True)
class TokenUsage:
    """What a request took from an endpoint, as it reported (`counted` False) or as counted here."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, served from the provider's prompt cache
    counted: bool = False  # counted here (tokenizer or estimate): the endpoint reported no usage
    estimated: bool = False  # counted without the model's tokenizer: about 4 characters a token
    requests: int = 1

    def __add__(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens,
                          self.cached_tokens + other.cached_tokens, self.counted or other.counted,
                          self.estimated or other.estimated, self.requests + other.requests)


@dataclass(frozen=True)
class Completion:
    text: str
    token_count: int  # tokens the engine generated, the end-of-sequence token included when it ended on one
    truncated: bool  # stopped at max_new_tokens rather than at end-of-sequence
    usage: TokenUsage | None = None  # this completion's share of its request's usage, where the endpoint said


class TextGenerator(Protocol):
    """Samples `params.n` completions for each conversation, with the model's own chat template.

    With `prefixes`, the reply to conversation i starts with prefixes[i] and the model
    continues it (repair: the learner finishes a trace from a repaired prefix); each
    completion's text then includes the prefix. Engines that cannot continue a reply
    (a chat API) raise NotImplementedError.
    """

    model_name: str

    def generate(self, conversations: Sequence[Conversation], params: SamplingParams,
                 prefixes: Sequence[str] | None = None) -> list[list[Completion]]: ...


@dataclass(frozen=True)
class SolutionLogProbs:
    """The model's log-probability of each solution token, given the conversation before it."""

    token_ids: list[int]
    tokens: list[str]  # each token decoded on its own, for loss-by-token reports
    logprobs: list[float]
    # Each token's rank: how many tokens the model rated at least as high (1: its sole top pick), as vLLM counts.
    ranks: list[int] = field(default_factory=list)


class LogProbScorer(Protocol):
    """Scores given solutions as the model's reply to each conversation (chat template applied)."""

    model_name: str

    def score(self, conversations: Sequence[Conversation], solutions: Sequence[str]) -> list[SolutionLogProbs]: ...


class RewardModel(Protocol):
    """An outcome reward model: one scalar per (question, solution), higher is better."""

    model_name: str

    def rewards(self, questions: Sequence[str], solutions: Sequence[str]) -> list[float]: ...


def reward_text(question: str, solution: str) -> str:
    """The one text layout the local reward model is trained and scored on."""
    return f"Question: {question}\nSolution: {solution}"


Model = TypeVar("Model", covariant=True)


class LearnerSource(Protocol, Generic[Model]):
    """The learner a stage runs on: the newest announced checkpoint (or a pinned one), and others by name.

    `current()` is asked at the start of each batch, never during one, so in-flight
    work finishes on the model it started with.
    """

    def current(self) -> tuple[str, Model]: ...

    def named(self, version: str) -> tuple[str, Model]: ...


def row_seed(prompt: str, seed: int, index: int = 0) -> int:
    """The seed of sample `index` of `prompt`: a 63-bit number from the three, stable across runs and processes."""
    digest = hashlib.sha256(f"{seed}\x00{index}\x00{prompt}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)
