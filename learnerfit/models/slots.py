"""Continuous batching for the transformers back end: a fixed number of decode slots, each given the next waiting
row as soon as its row ends; prompt tokens shared by rows computed once.

A padded generate() runs every row until the longest one ends, so once SmolLM2's short
correct answers have finished, most of its decode steps compute nothing that is kept. Here
a finished row leaves the batch at once (its key/value cache rows are dropped) and waiting
rows are prefilled and joined to the running batch, their caches left-padded to a common
length; the attention mask and per-row positions keep each row's tokens where an unpadded
pass would put them. On these CPUs prefill is most of the work (the learner's prompt
carries two demonstrations: ~130 tokens, for ~25 generated), so the prefix every prompt
shares is run once per call and each distinct prompt once for all its N samples, its
cache copied to them. vLLM does all of this on a GPU (paged attention, prefix caching).

Each row samples from its own seeded generator, so a row's text depends on its prompt, seed
and the model, not on which rows share its batch or when it was admitted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from learnerfit.domain.inference import SamplingParams
from learnerfit.models.batching import (after_prefix, cache_layers, cache_of, pad_batch, prefix_cache, shared_prefix_length,
                                        with_cache)


@dataclass
class DecodeStats:
    """What the decode loop spent, cumulative over calls: the generation benchmark reads it."""

    forward_passes: int = 0
    slot_steps: int = 0      # rows × tokens sampled: every decode slot computed, kept or not
    kept_tokens: int = 0     # tokens of the outputs, end-of-sequence included
    prefill_tokens: int = 0  # prompt tokens run through the model, padding included
    decode_passes: int = 0
    decode_rows: int = 0     # rows summed over decode passes

    @property
    def slot_share(self) -> float:
        """Share of the computed decode slots that produced a kept token (1.0: none wasted)."""
        return self.kept_tokens / self.slot_steps if self.slot_steps else 0.0

    def occupancy(self, slots: int) -> float:
        """How full the slots were over the decode passes (low: rows ran out, as at the end of a call)."""
        return self.decode_rows / (self.decode_passes * slots) if self.decode_passes else 0.0


class SlotDecoder:
    """Samples rows of token ids through `slots` decode slots; see the module's docstring."""

    def __init__(self, model, *, eos_ids: Sequence[int], pad_id: int, slots: int, refill_at: int | None = None):
        self.model = model
        self.eos_ids = set(eos_ids)
        self.pad_id = pad_id
        self.slots = max(1, slots)
        # Waiting rows are admitted once this many slots are free: one prefill pass and one cache merge serve
        # several rows (each merge copies the running cache), while a slot idles for only a few steps.
        self.refill_at = max(1, refill_at if refill_at is not None else self.slots // 4)
        self.stats = DecodeStats()

    def decode(self, prompts: Sequence[Sequence[int]], seeds: Sequence[int], params: SamplingParams) -> list[list[int]]:
        """Generated ids per prompt, up to and including an end-of-sequence token (none when cut at the limit)."""
        device = self.model.device
        generators = [torch.Generator().manual_seed(s) for s in seeds] if params.temperature > 0 else None
        outputs: list[list[int]] = [[] for _ in prompts]
        waiting = deque(range(len(prompts)))
        batch: _Batch | None = None
        with torch.inference_mode():
            prefix = self._shared_prefix(prompts) if prompts else None
            while waiting or batch is not None:
                free = self.slots - (batch.size if batch else 0)
                if waiting and (batch is None or free >= min(self.refill_at, len(waiting))):
                    rows = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                    joined, logits = self._prefill([prompts[i] for i in rows], rows, prefix, device)
                    batch = joined if batch is None else batch.merge(joined)
                    fresh = slice(batch.size - len(rows), batch.size)
                else:
                    logits = batch.step(self.model)
                    fresh = slice(0, batch.size)
                    self.stats.forward_passes += 1
                    self.stats.decode_passes += 1
                    self.stats.decode_rows += batch.size
                rows_sampled = batch.rows[fresh]
                tokens = _sample(logits, [generators[i] for i in rows_sampled] if generators else None,
                                 params.temperature, params.top_p)
                batch.pending[fresh] = tokens.to(device)
                for row, token in zip(rows_sampled, tokens.tolist(), strict=True):
                    outputs[row].append(token)
                self.stats.slot_steps += len(rows_sampled)
                finished = [pos for pos, row in enumerate(batch.rows)
                            if outputs[row][-1] in self.eos_ids or len(outputs[row]) >= params.max_new_tokens]
                if finished:
                    self.stats.kept_tokens += sum(len(outputs[batch.rows[pos]]) for pos in finished)
                    batch = batch.without(finished)
        return outputs

    def _shared_prefix(self, prompts: Sequence[Sequence[int]]) -> _Prefix | None:
        """The tokens every prompt starts with (the system prompt and demonstrations), run through the model once."""
        length = shared_prefix_length(prompts)
        if not length:
            return None
        self.stats.forward_passes += 1
        self.stats.prefill_tokens += length
        return _Prefix(length, prefix_cache(self.model, prompts[0][:length]))

    def _prefill(self, prompts: list[Sequence[int]], rows: list[int], prefix: _Prefix | None,
                 device) -> tuple[_Batch, torch.Tensor]:
        """Joins rows: each distinct prompt (the N samples of a problem share one) runs once after the shared
        prefix, its cache then copied to each of its rows."""
        distinct: dict[tuple[int, ...], int] = {}
        copies = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]
        skip = prefix.length if prefix else 0
        ids, mask = pad_batch([p[skip:] for p in distinct], self.pad_id, left=True)
        ids, mask = ids.to(device), mask.to(device)
        cache = DynamicCache()
        if prefix:  # padding sits between the prefix and a shorter suffix; positions count real tokens only
            cache, mask = after_prefix(prefix.layers, mask)
        positions = (mask.cumsum(1) - 1).clamp(min=0)[:, skip:]
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **with_cache(cache),
                         logits_to_keep=1)
        self.stats.forward_passes += 1
        self.stats.prefill_tokens += ids.numel()
        index = torch.tensor(copies, device=device)
        layers = [(k[index], v[index]) for k, v in cache_layers(cache_of(out))]
        pending = torch.full((len(prompts),), self.pad_id, dtype=torch.long, device=device)
        return _Batch(rows, DynamicCache(layers), mask[index], pending), out.logits[index, -1]


@dataclass
class _Prefix:
    length: int
    layers: list[tuple[torch.Tensor, torch.Tensor]]


class _Batch:
    """The rows in the decode slots: their key/value cache (rows × heads × positions × dims per layer), the
    attention mask over those positions, and each row's last sampled token (not yet in the cache)."""

    def __init__(self, rows: list[int], cache: DynamicCache, mask: torch.Tensor, pending: torch.Tensor):
        self.rows, self.cache, self.mask, self.pending = rows, cache, mask, pending

    @property
    def size(self) -> int:
        return len(self.rows)

    def step(self, model) -> torch.Tensor:
        """One decode pass: feeds each row its pending token; returns the next-token logits."""
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        out = model(input_ids=self.pending[:, None], attention_mask=self.mask,
                    position_ids=self.mask.sum(1, keepdim=True) - 1, **with_cache(self.cache))
        return out.logits[:, -1]

    def merge(self, other: _Batch) -> _Batch:
        width = max(self.mask.shape[1], other.mask.shape[1])
        layers = [(torch.cat([_left_pad(k, width, 2), _left_pad(k2, width, 2)]),
                   torch.cat([_left_pad(v, width, 2), _left_pad(v2, width, 2)]))
                  for (k, v), (k2, v2) in zip(cache_layers(self.cache), cache_layers(other.cache), strict=True)]
        mask = torch.cat([_left_pad(self.mask, width, 1), _left_pad(other.mask, width, 1)])
        return _Batch(self.rows + other.rows, DynamicCache(layers), mask, torch.cat([self.pending, other.pending]))

    def without(self, positions: list[int]) -> _Batch | None:
        leaving = set(positions)
        keep = [pos for pos in range(self.size) if pos not in leaving]
        if not keep:
            return None
        index = torch.tensor(keep, device=self.mask.device)
        mask = self.mask[index]
        start = int(mask.any(0).nonzero()[0])  # columns no remaining row uses are cut, so attention stays short
        layers = [(k[index, :, start:], v[index, :, start:]) for k, v in cache_layers(self.cache)]
        return _Batch([self.rows[pos] for pos in keep], DynamicCache(layers), mask[:, start:], self.pending[index])


def _sample(logits: torch.Tensor, generators: list[torch.Generator] | None, temperature: float,
            top_p: float) -> torch.Tensor:
    """Next token per row: greedy at temperature 0; else from the row's own generator, after temperature and a
    nucleus cut, with no top-k (the paper samples the full distribution)."""
    if generators is None:
        return logits.argmax(dim=-1).cpu()
    probs = torch.softmax(logits.float() / temperature, dim=-1).cpu()
    if top_p < 1.0:
        ordered, order = probs.sort(dim=-1, descending=True)
        ordered[(ordered.cumsum(dim=-1) - ordered) > top_p] = 0.0  # keep the least mass reaching top_p
        probs = torch.zeros_like(probs).scatter_(-1, order, ordered)
    return torch.cat([torch.multinomial(row, 1, generator=g) for row, g in zip(probs, generators, strict=True)])


def _left_pad(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - dim) + [missing, 0]
    return F.pad(tensor, pad)
