"""The LLM Oracle: a task becomes its versioned prompt (prompts/), a model writes the answer.

Any TextGenerator serves (a hosted model through the OpenAI-compatible back end,
vLLM, transformers). repair takes two calls: one names the first wrong step, one
rewrites it in the learner's style.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from learnerfit.domain.inference import Completion, Conversation, SamplingParams, TextGenerator
from learnerfit.domain.oracle.prompts import template
from learnerfit.domain.oracle.selection import REFINE, REPAIR, REWRITE, SYNTHESIZE
from learnerfit.domain.oracle.spend import TokenCounter, estimate_tokens
from learnerfit.domain.oracle.tasks import OracleReply, OracleTask, StepFix
from learnerfit.domain.records import split_steps
from learnerfit.domain.style import StyleCard

_FIRST_NUMBER = re.compile(r"-?\d+")
_TEMPLATES = {REFINE: ["refine"], SYNTHESIZE: ["synthesize"], REWRITE: ["rewrite"],
              REPAIR: ["repair_locate", "repair_step"]}


def first_wrong_step(reply: str, steps: int) -> int | None:
    """The 1-based step the Oracle named, or None when it named none (0) or nothing usable."""
    match = _FIRST_NUMBER.search(reply)
    if match is None:
        return None
    number = int(match.group(0))
    return number if 1 <= number <= steps else None


class PromptedOracle:
    def __init__(self, generator: TextGenerator, params: SamplingParams, count_tokens: TokenCounter = estimate_tokens):
        self.generator = generator
        self.params = params
        self.count_tokens = count_tokens  # where the engine reports no usage
        self.model_name = generator.model_name

    def prompt_ids(self, mode: int) -> list[str]:
        return [template(name).id for name in _TEMPLATES[mode]]

    def conversation(self, task: OracleTask) -> Conversation:
        """The prompt a refine, synthesize or rewrite task becomes."""
        question = task.problem.question
        if task.mode == SYNTHESIZE:
            return template("synthesize").render(question=question)
        if task.mode == REFINE:
            return template("refine").render(question=question, trace=task.trace)
        if task.mode == REWRITE:
            return template("rewrite").render(question=question, trace=task.trace, style_card=_card(task))
        raise ValueError(f"mode {task.mode} is not written whole (repair: fix_first_wrong_step)")

    def write(self, tasks: Sequence[OracleTask]) -> list[OracleReply]:
        return [OracleReply(c) for c in self._complete([self.conversation(t) for t in tasks])]

    def fix_first_wrong_step(self, tasks: Sequence[OracleTask]) -> list[StepFix]:
        locate, fix = template("repair_locate"), template("repair_step")
        steps = [split_steps(t.trace) for t in tasks]
        named = self._complete([
            locate.render(question=t.problem.question,
                          numbered_steps="\n".join(f"{k}. {s}" for k, s in enumerate(lines, 1)) or "(empty)")
            for t, lines in zip(tasks, steps, strict=True)])
        wrong = [first_wrong_step(c.text, len(lines)) for c, lines in zip(named, steps, strict=True)]
        todo = [i for i, k in enumerate(wrong) if k is not None]
        fixes = dict(zip(todo, self._complete([
            fix.render(question=tasks[i].problem.question, prefix="\n".join(steps[i][: wrong[i] - 1]) or "(none yet)",
                       wrong_step=steps[i][wrong[i] - 1], style_card=_card(tasks[i]))
            for i in todo]), strict=True))
        return [StepFix(wrong[i], _one_line(fixes[i].text) if i in fixes else "", named[i].text.strip(),
                        named[i].usage + fixes[i].usage if i in fixes else named[i].usage)
                for i in range(len(tasks))]

    def _complete(self, conversations: Sequence[Conversation]) -> list[Completion]:
        """One completion per conversation, each with its usage (counted here where the engine said none)."""
        if not conversations:
            return []
        completions = [samples[0] for samples in self.generator.generate(conversations, self.params)]
        return [c if c.usage is not None else
                replace(c, usage=self.count_tokens(conversation, c.text, c.token_count))
                for conversation, c in zip(conversations, completions, strict=True)]


def _card(task: OracleTask) -> str:
    return (task.style_card or StyleCard.from_samples([task.trace])).render()


def _one_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
