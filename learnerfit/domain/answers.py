"""Final-answer extraction and verification with math-verify.

Only the final answer is graded, never the whole text: math-verify's parser picks
up any expression in a completion, so a solution that merely restates the
question's arithmetic could otherwise "equal" the reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from learnerfit.v1 import records_pb2

_FINAL_LINE = re.compile(r"final\s+answer\s*(?:is|:|=|-)?\s*(?P<answer>[^\n]+)", re.IGNORECASE)
_HASHES = re.compile(r"^\s*####\s*(?P<answer>[^\n]+)", re.MULTILINE)
_BOXED = "\\boxed{"


def extract_final_answer(text: str) -> tuple[str | None, str]:
    """Returns (answer, how it was found) or (None, why not). Precedence: \\boxed{}, ####, 'Final answer:'."""
    boxed = _last_boxed(text)
    if boxed is not None:
        return _clean(boxed), "boxed"
    hashes = _HASHES.findall(text)
    if hashes:
        return _clean(hashes[-1]), "####"
    finals = _FINAL_LINE.findall(text)
    if finals:
        answer = _clean(finals[-1])
        return (answer, "final answer line") if answer else (None, "empty 'Final answer:' line")
    return None, "no \\boxed{}, '####' or 'Final answer:' found"


def extract_first_answer(text: str) -> str | None:
    """The first final answer the text gives, by the same precedence (a learner that keeps writing after its answer
    line may give another one later: extract_final_answer takes the last)."""
    start = text.find(_BOXED)
    if start >= 0:
        content = _boxed_at(text, start)
        end = len(text) if content is None else start + len(_BOXED) + len(content) + 1
        first = _last_boxed(text[:end])  # within the first box, the innermost, as extract_final_answer reads one
        if first is not None:
            return _clean(first)
    for pattern in (_HASHES, _FINAL_LINE):
        found = pattern.findall(text)
        if found:
            return _clean(found[0]) or None
    return None


def _last_boxed(text: str) -> str | None:
    return _boxed_at(text, text.rfind(_BOXED))


def _boxed_at(text: str, start: int) -> str | None:
    """The content of the \\boxed{...} that starts at `start` (-1: none), or None when its braces never close."""
    if start < 0:
        return None
    depth, i = 1, start + len(_BOXED)
    while i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + len(_BOXED) : i]
        i += 1
    return None  # unbalanced: treat as absent


def _clean(answer: str) -> str:
    answer = answer.strip().strip("*").strip().rstrip(".").strip()
    for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if answer.startswith(left) and answer.endswith(right) and len(answer) >= len(left) + len(right):
            answer = answer[len(left) : len(answer) - len(right)].strip()
    return answer.rstrip(".").strip()


def _as_latex(expression: str) -> str:
    # Wrapped in $...$ so LaTeX answers (\sqrt{2}, 3\pi, tuples) parse as LaTeX, not as text.
    return expression if "$" in expression else f"${expression}$"


def verify_answer(answer: str, reference: str, timeout_s: int) -> tuple[int, str]:
    """(Verdict, detail) for one answer. Must run in a process's main thread: math-verify times out by signal."""
    from math_verify import parse, verify

    try:
        gold = parse(_as_latex(reference), parsing_timeout=timeout_s)
        if not gold:
            return records_pb2.VERDICT_CHECK_FAILED, f"reference {reference!r} did not parse"
        predicted = parse(_as_latex(answer), parsing_timeout=timeout_s)
        if not predicted:
            return records_pb2.VERDICT_UNPARSED, f"answer {answer!r} did not parse"
        if verify(gold, predicted, timeout_seconds=timeout_s):
            return records_pb2.VERDICT_CORRECT, f"{answer!r} equals {reference!r}"
        return records_pb2.VERDICT_INCORRECT, f"{answer!r} differs from {reference!r}"
    except Exception as exc:  # sympy can fail in many ways on odd input; that is a failed check, not a crash
        return records_pb2.VERDICT_CHECK_FAILED, f"check failed: {type(exc).__name__}: {exc}"


class AnswerCheck(Protocol):
    """What the domain asks of an answer check: a verdict and a detail per (answer, reference) pair.
    learnerfit/models/answers.py runs it in a worker process (math-verify's own timeout needs one)."""

    def check(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[int, str]]: ...
