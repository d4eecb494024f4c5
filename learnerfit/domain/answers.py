"""Final-answer extraction and verification with math-verify.

Only the final answer is graded, never the whole text: math-verify's parser picks
up any expression in a completion, so a solution that merely restates the
question's arithmetic could otherwise "equal" the reference.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import re
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pydantic import Field

from learnerfit.section import Section
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


def _last_boxed(text: str) -> str | None:
    start = text.rfind(_BOXED)
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


def _die_with_parent() -> None:
    """Worker start-up: on Linux, ask to be killed when the service that started it dies, even by SIGKILL (a
    spawned worker holds both ends of its task queue, so it would otherwise wait forever, orphaned)."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(0)


_PR_SET_PDEATHSIG = 1


def _verify_many(pairs: Sequence[tuple[str, str]], timeout_s: int) -> list[tuple[int, str]]:
    return [verify_answer(answer, reference, timeout_s) for answer, reference in pairs]


class AnswerChecker:
    """Verifies answers in a worker process, where math-verify's own per-check timeout works.

    A worker that hangs past every timeout is replaced and its checks are marked failed.
    """

    def __init__(self, timeout_s: int = 5):
        self.timeout_s = timeout_s
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: forking a process that already runs gRPC and Kafka threads is unsafe.
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_die_with_parent)

    def warm_up(self) -> None:
        self.check([("1", "1")])

    def check(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[int, str]]:
        if not pairs:
            return []
        future = self._pool.submit(_verify_many, list(pairs), self.timeout_s)
        try:
            return future.result(timeout=self.timeout_s * 2 * len(pairs) + 30)
        except (TimeoutError, BrokenProcessPool) as exc:
            self._replace_pool()
            return [(records_pb2.VERDICT_CHECK_FAILED, f"answer check worker failed: {type(exc).__name__}")] * len(pairs)

    def _replace_pool(self) -> None:
        for process in list(getattr(self._pool, "_processes", {}).values()):
            process.terminate()  # a hung sympy call never returns by itself
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class AnswerCheckSettings(Section):
    """The answer check (math-verify in a worker process)."""

    timeout_s: int = Field(5, ge=1, le=120, description="Time limit of one answer check (parse + verify).")

    def checker(self) -> AnswerChecker:
        """A started checker (its worker is spawned and warmed up)."""
        checker = AnswerChecker(timeout_s=self.timeout_s)
        checker.warm_up()
        return checker
