"""What the Oracle services ask of an Oracle: tasks, not prompts.

A task is one mode on one problem (and, but for synthesize, one learner trace), with
the learner's style card for the modes that copy the learner's style. How an Oracle
answers is its own business: the LLM Oracle (prompted.py) turns a task into its
versioned prompt and samples a model; the rule-based teacher (teacher.py) computes
the answer. Either may say it cannot do a task, with the reason; the output is then
rejected with that reason, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from learnerfit.domain.inference import Completion, TokenUsage
from learnerfit.domain.style import StyleCard
from learnerfit.v1 import records_pb2


@dataclass(frozen=True)
class OracleTask:
    mode: int
    problem: records_pb2.Problem
    trace: str = ""  # the learner's trace (refine, rewrite, repair)
    style_card: StyleCard | None = None  # rewrite, repair: the learner's style, measured on its recent samples


@dataclass(frozen=True)
class OracleReply:
    """A written solution, or why the Oracle could not write one (`unable`)."""

    completion: Completion
    unable: str | None = None


@dataclass(frozen=True)
class StepFix:
    """repair's Oracle part: the first wrong step of the trace (1-based) and that step corrected, in the learner's
    style; `step` None when the Oracle found none (`located` says what it said instead)."""

    step: int | None
    line: str
    located: str
    usage: TokenUsage | None = None  # the requests it took (None: no model asked, the rule-based teacher)


class Oracle(Protocol):
    model_name: str  # what outputs record as their `model`

    def prompt_ids(self, mode: int) -> list[str]:
        """What outputs of this mode record as their prompts (template ids, or the teacher's rule versions)."""
        ...

    def write(self, tasks: Sequence[OracleTask]) -> list[OracleReply]:
        """refine, synthesize, rewrite: one whole solution per task."""
        ...

    def fix_first_wrong_step(self, tasks: Sequence[OracleTask]) -> list[StepFix]:
        """repair: the first wrong step of each task's trace, fixed; the learner continues from there."""
        ...
