"""Batching helpers the in-process and remote model paths share."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def length_sorted_batches(lengths: Sequence[int], max_sequences: int) -> list[list[int]]:
    """Indices grouped so sequences of similar length share a batch: less padding per forward pass."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    return [order[i : i + max_sequences] for i in range(0, len(order), max_sequences)]


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask
