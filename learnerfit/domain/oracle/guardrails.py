"""Guardrails on Oracle outputs. Each returns a Rejection when it rejects; the service counts it and says why.

Order matters only for which reason is reported first: the cheap text checks run
before the answer is verified.
"""

from __future__ import annotations

import re

from pydantic import Field

from learnerfit.domain.inference import Completion
from learnerfit.domain.style import overlap
from learnerfit.section import Section
from learnerfit.v1 import records_pb2

# Text that talks about the task instead of solving it: the Oracle leaking its prompt or persona.
META_TEXT = re.compile(
    r"reference (?:answer|solution)|your (?:response|solution|answer|student)|the student|as an ai\b"
    r"|language model|i cannot|i can't help|here is the (?:corrected|repaired|rewritten)",
    re.IGNORECASE,
)


class GuardrailSettings(Section):
    """What an Oracle output must pass to be kept."""

    min_overlap: float = Field(0.5, ge=0, le=1, description="rewrite/repair: least share of the learner's words an "
                                                             "output must keep.")


def rejection(guardrail: str, detail: str = "") -> records_pb2.Rejection:
    return records_pb2.Rejection(guardrail=guardrail, detail=detail)


def text_rejection(completion: Completion, parent_text: str | None, min_overlap: float,
                   keeps_parent: bool) -> records_pb2.Rejection | None:
    """The first text-level reason to reject, or None."""
    text = completion.text
    if not text.strip():
        return rejection("empty")
    if completion.truncated:
        return rejection("truncated", "stopped at the token limit")
    meta = META_TEXT.search(text)
    if meta:
        return rejection("meta_text", repr(meta.group(0)))
    if keeps_parent and parent_text is not None:
        kept = overlap(text, parent_text)
        if kept < min_overlap:
            return rejection("low_overlap", f"kept {kept:.2f} of the learner's words, needs {min_overlap:.2f}")
    return None
