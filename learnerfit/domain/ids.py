"""Stable ids derived from content, so a record delivered twice is recognised as the same record."""

from __future__ import annotations

import hashlib


def stable_id(kind: str, *parts: object) -> str:
    """A short id that depends only on `kind` and `parts` (e.g. "traj-3f9a...")."""
    digest = hashlib.sha256()
    for part in (kind, *parts):
        encoded = str(part).encode("utf-8")
        # Length-prefix each part so ("ab", "c") and ("a", "bc") differ.
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return f"{kind}-{digest.hexdigest()[:20]}"
