"""The transformers back end (CPU here, GPU in production): batched sampling with the model's chat template."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from learnerfit.domain.inference import Completion, Conversation, SamplingParams, SolutionLogProbs, row_seed
from learnerfit.models.batching import after_prefix, pad_batch, prefix_cache, shared_prefix_length, with_cache
from learnerfit.models.chat import encode_reply, render_prompt
from learnerfit.models.slots import SlotDecoder
from learnerfit.models.timing import model_time
from learnerfit.models.weights import resolve_model

log = logging.getLogger(__name__)


def load_causal_lm(spec: str, *, device: str, dtype: str, trust_remote_code: bool, cache_dir: Path | None = None,
                   torch_threads: int | None = None):
    """Loads tokenizer and model from safetensors only; left padding for batched generation."""
    if device == "cpu" and torch_threads is not None:
        torch.set_num_threads(torch_threads)
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
    """Samples N completions per conversation; every row of a call goes through the same decode slots."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        torch_threads: int = 1,
        max_batch_sequences: int = 64,
        refill_at: int | None = None,
        trust_remote_code: bool = False,
        cache_dir: Path | None = None,
    ):
        self.model_name = model
        self.device = device
        self.refill_at = refill_at
        self.tokenizer, self.model = load_causal_lm(model, device=device, dtype=dtype, torch_threads=torch_threads,
                                                    trust_remote_code=trust_remote_code, cache_dir=cache_dir)
        self._eos_ids = _eos_ids(self.tokenizer, self.model)
        self.max_batch_sequences = max_batch_sequences  # the decode slots (continuous batching: models/slots.py)
        self._lock = threading.Lock()  # one forward pass at a time: gRPC calls and the stage share the model

    def generate(self, conversations: Sequence[Conversation], params: SamplingParams,
                 prefixes: Sequence[str] | None = None) -> list[list[Completion]]:
        prefixes = list(prefixes) if prefixes is not None else [""] * len(conversations)
        prompts = [render_prompt(self.tokenizer, c) + prefix for c, prefix in zip(conversations, prefixes, strict=True)]
        encoded = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        # One row per sample, each with its own seed: (prompt, seed, sample index) decides a sample's text.
        rows = [(ids, row_seed(prompt, params.seed, k)) for prompt, ids in zip(prompts, encoded, strict=True)
                for k in range(params.n)]
        with self._lock, model_time("generate"):
            generated = self.decoder.decode([ids for ids, _ in rows], [seed for _, seed in rows], params)
        completions = [self._completion(ids, params.max_new_tokens) for ids in generated]
        results = [completions[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]
        return [[_with_prefix(c, prefix) for c in samples] for samples, prefix in zip(results, prefixes, strict=True)]

    @property
    def max_batch_sequences(self) -> int:
        return self.decoder.slots

    @max_batch_sequences.setter
    def max_batch_sequences(self, slots: int) -> None:
        self.decoder = SlotDecoder(self.model, eos_ids=self._eos_ids, pad_id=self.tokenizer.pad_token_id,
                                   slots=slots, refill_at=self.refill_at)

    def _completion(self, ids: list[int], max_new_tokens: int) -> Completion:
        end = next((i for i, t in enumerate(ids) if t in self._eos_ids), None)
        kept = ids if end is None else ids[:end]
        text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
        # Counted as vLLM counts: the end-of-sequence token is a generated token (text leaves it out).
        return Completion(text=text, token_count=len(kept) + (end is not None),
                          truncated=end is None and len(ids) >= max_new_tokens)


def _with_prefix(completion: Completion, prefix: str) -> Completion:
    if not prefix:
        return completion
    return Completion(text=(prefix + completion.text).strip(), token_count=completion.token_count,
                      truncated=completion.truncated)


def _eos_ids(tokenizer, model) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


class TransformersScorer:
    """Log-probabilities of given solutions under a causal LM, for many (conversation, solution) pairs at once.

    Pairs are sorted by length and packed into batches under a token budget, so a
    batch pads little; the LM head runs only at the positions that predict a
    solution token, which skips most of the vocabulary projection (the prompt is
    context, not scored). Right padding keeps every real token at the position it
    has in an unpadded pass.
    """

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        torch_threads: int = 1,
        max_batch_sequences: int = 64,
        max_batch_tokens: int = 8192,
        trust_remote_code: bool = False,
        cache_dir: Path | None = None,
    ):
        self.model_name = model
        self.device = device
        self.max_batch_sequences = max_batch_sequences
        self.max_batch_tokens = max_batch_tokens
        self.tokenizer, self.model = load_causal_lm(model, device=device, dtype=dtype, torch_threads=torch_threads,
                                                    trust_remote_code=trust_remote_code, cache_dir=cache_dir)
        # Models that rescale logits after the head (soft-capping) need the full head output.
        config = self.model.config
        self._head_only_at_solution = not getattr(config, "final_logit_softcapping", None) and \
            getattr(config, "logit_scale", None) is None
        self._lock = threading.Lock()

    def score(self, conversations: Sequence[Conversation], solutions: Sequence[str]) -> list[SolutionLogProbs]:
        pairs = [encode_reply(self.tokenizer, c, s) for c, s in zip(conversations, solutions, strict=True)]
        results: list[SolutionLogProbs | None] = [None] * len(pairs)
        with self._lock, torch.inference_mode(), model_time("score"):
            for batch in self._batches([len(p) + len(s) for p, s in pairs]):
                for i, (logprobs, ranks) in zip(batch, self._score_batch([pairs[i] for i in batch]), strict=True):
                    solution_ids = pairs[i][1]
                    results[i] = SolutionLogProbs(
                        token_ids=solution_ids,
                        tokens=[self.tokenizer.decode([t]) for t in solution_ids],
                        logprobs=logprobs,
                        ranks=ranks,
                    )
        return results  # type: ignore[return-value]

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        batches: list[list[int]] = []
        for i in order:
            # Longest first, so the first member of a batch sets its padded width.
            if batches and len(batches[-1]) < self.max_batch_sequences and \
                    lengths[batches[-1][0]] * (len(batches[-1]) + 1) <= self.max_batch_tokens:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _score_batch(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[list[float], list[int]]]:
        """Per pair: the solution tokens' log-probs and ranks (how many tokens the model rated at least as high).
        The prompt prefix every pair shares (the learner's demonstrations: most of each sequence) runs once."""
        skip = shared_prefix_length([p for p, _ in pairs])
        ids, mask = pad_batch([(p + s)[skip:] for p, s in pairs], self.tokenizer.pad_token_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        # Position t predicts token t+1: solution token k of row b sits at len(prompt)+k, predicted from one before.
        row_index = torch.cat([torch.full((len(s),), b) for b, (_, s) in enumerate(pairs)]).to(self.device)
        predictor = torch.cat([torch.arange(len(p) - 1, len(p) - 1 + len(s)) for p, s in pairs]).to(self.device) - skip
        targets = torch.cat([torch.tensor(s, dtype=torch.long) for _, s in pairs]).to(self.device)
        context = {}
        if skip:
            cache, mask = after_prefix(prefix_cache(self.model, pairs[0][0][:skip]), mask)
            context = with_cache(cache)
        if self._head_only_at_solution:
            hidden = self.model.base_model(input_ids=ids, attention_mask=mask, **context).last_hidden_state
            logits = self.model.get_output_embeddings()(hidden[row_index, predictor])
        else:
            logits = self.model(input_ids=ids, attention_mask=mask, **context).logits[row_index, predictor]
        all_logprobs = torch.log_softmax(logits.float(), dim=-1)
        chosen = all_logprobs.gather(1, targets[:, None])
        token_ranks = (all_logprobs >= chosen).sum(dim=-1).tolist()  # vLLM's definition: ties count against it
        token_logprobs = chosen[:, 0].tolist()
        out, start = [], 0
        for _, s in pairs:
            out.append((token_logprobs[start : start + len(s)], token_ranks[start : start + len(s)]))
            start += len(s)
        return out
