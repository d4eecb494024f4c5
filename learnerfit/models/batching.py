"""Batching helpers the in-process and remote model paths share."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import DynamicCache

MIN_SHARED_PREFIX = 8  # tokens; below this a separate pass for the prefix costs more than it saves


def length_sorted_batches(lengths: Sequence[int], max_sequences: int) -> list[list[int]]:
    """Indices grouped so sequences of similar length share a batch: less padding per forward pass."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    return [order[i : i + max_sequences] for i in range(0, len(order), max_sequences)]


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ids and attention mask: right padding, or left (every row ends where decoding starts)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def shared_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every row shares (the system prompt and demonstrations of the learner's prompts),
    leaving each row at least one token of its own; 0 when that is under MIN_SHARED_PREFIX or nothing is shared
    (one distinct row)."""
    if len({tuple(r) for r in rows}) < 2:
        return 0
    length = min(len(r) for r in rows) - 1
    first = rows[0]
    for row in rows[1:]:
        length = next((i for i in range(length) if row[i] != first[i]), length)
    return length if length >= MIN_SHARED_PREFIX else 0


def with_cache(cache: DynamicCache) -> dict:
    """A causal LM's keyword arguments to run on (and extend) `cache`. transformers 5.20 renamed the argument
    `past_key_values` to `cache`; we run the version vLLM 0.32 accepts (<5.20), and this is the one place that
    names it (with `cache_of`)."""
    return {"past_key_values": cache, "use_cache": True}


def cache_of(output) -> DynamicCache:
    """The key/value cache a forward pass with `with_cache` returned."""
    return output.past_key_values


def prefix_cache(model, ids: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The key/value cache (per layer) of one run of `ids` through the model, to start many rows from."""
    out = model(input_ids=torch.tensor([list(ids)], device=model.device), **with_cache(DynamicCache()),
                logits_to_keep=1)
    return cache_layers(cache_of(out))


def after_prefix(layers: list[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor
                 ) -> tuple[DynamicCache, torch.Tensor]:
    """For rows that continue one shared prefix (its cache `layers`, from prefix_cache): a cache with the prefix in
    every row, and `mask` (the rows' own tokens) with the prefix's positions in front."""
    rows, length = mask.shape[0], layers[0][0].shape[2]
    cache = DynamicCache([(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in layers])
    return cache, torch.cat([torch.ones((rows, length), dtype=mask.dtype, device=mask.device), mask], dim=1)


def cache_layers(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(layer.keys, layer.values) for layer in cache.layers]
