"""The answer check's worker process: math-verify (learnerfit/domain/answers.py's verify_answer) runs where its own
per-check timeout works, and a worker that hangs past every timeout is replaced. The domain declares what it needs
(AnswerCheck); this is the infrastructure behind it."""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pydantic import Field

from learnerfit.domain.answers import verify_answer
from learnerfit.section import Section
from learnerfit.v1 import records_pb2


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
