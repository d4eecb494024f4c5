"""Small helpers on the shared records: names of origins and verdicts, steps of a solution text."""

from __future__ import annotations

from learnerfit.v1 import records_pb2


def origin_name(origin: int) -> str:
    """ORIGIN_LEARNER_SAMPLE -> "learner_sample" (the name used in exports and logs)."""
    return records_pb2.Origin.Name(origin).removeprefix("ORIGIN_").lower()


def verdict_name(verdict: int) -> str:
    return records_pb2.Verdict.Name(verdict).removeprefix("VERDICT_").lower()


def split_steps(text: str) -> list[str]:
    """A solution's steps: its non-empty lines (the learner writes one step per line)."""
    return [line.strip() for line in text.splitlines() if line.strip()]
