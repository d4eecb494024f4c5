"""Guardrails on Oracle outputs. Each returns a reason when it rejects; the service counts it and says why.

Order matters only for which reason is reported first: the cheap text checks run
before the answer is verified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.backends.base import Completion
from services.common.style import overlap

# Text that talks about the task instead of solving it: the Oracle leaking its prompt or persona.
META_TEXT = re.compile(
    r"reference (?:answer|solution)|your (?:response|solution|answer|student)|the student|as an ai\b"
    r"|language model|i cannot|i can't help|here is the (?:corrected|repaired|rewritten)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class GuardrailSettings:
    min_overlap: float = 0.5  # rewrite/repair must keep at least this share of the learner's words
    keeps_parent: bool = False  # modes that should keep much of the parent (rewrite, repair)


def text_rejection(completion: Completion, parent_text: str | None, settings: GuardrailSettings) -> str | None:
    """The first text-level reason to reject, or None."""
    text = completion.text
    if not text.strip():
        return "empty"
    if completion.truncated:
        return "truncated"
    meta = META_TEXT.search(text)
    if meta:
        return f"meta_text: {meta.group(0)!r}"
    if settings.keeps_parent and parent_text is not None:
        kept = overlap(text, parent_text)
        if kept < settings.min_overlap:
            return f"low_overlap: kept {kept:.2f} of the learner's words, needs {settings.min_overlap:.2f}"
    return None


REASONS = ("empty", "truncated", "meta_text", "low_overlap", "answer_not_verified")
