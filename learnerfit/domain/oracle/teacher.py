"""The rule-based teacher: an Oracle that computes instead of sampling, so every mode runs offline, right and the
same every time.

A stand-in for a strong model, good for studying *style* with correctness held
fixed; not a model of how a strong LLM errs. It knows the right value of every
step of the problems it can read:

* arithmetic families (reasoning-gym's basic_arithmetic, chain_sum, products; any
  question that holds one arithmetic expression): the expression, evaluated one
  operation at a time in the order of operations;
* problems with a worked reference solution (`Problem.reference_solution`;
  reasoning-gym's gsm_symbolic carries one): its lines, each equation checked;

and for anything else it says it cannot, with the reason; it never guesses. Modes:

* synthesize: its own solution, in its register;
* refine: the learner's steps, each result corrected (and corrected values carried
  into the steps that used them), written in the teacher's register;
* rewrite (style-aligned): the learner's own lines, corrected in place; nothing else
  of the learner's text changes;
* repair: the first wrong step, corrected in the learner's notation: a step whose
  arithmetic is wrong, or a step that goes on past the answer once the steps have
  reached it (replaced by the answer line), or a final answer that is not the value
  the steps reached. The learner continues from there.

refine and rewrite refuse a trace whose reasoning is wrong as far as the teacher can
see: a step using a number that is neither in the problem nor an earlier result, or
steps that, their arithmetic right, do not reach the answer. It does not rewrite
reasoning.

The register (`bare`, `plain`, `mixed`, `latex`) sets how far the teacher's text is from the
learner's one-equation-per-line style, with correctness fixed: the dose of drift (`bare` is
that style itself).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from learnerfit.domain.inference import Completion
from learnerfit.domain.oracle.arithmetic import (
    Equation,
    NotArithmetic,
    find_equations,
    fmt,
    normalise,
    numbers,
    operations,
    value,
)
from learnerfit.domain.oracle.selection import REFINE, REWRITE, SYNTHESIZE
from learnerfit.domain.oracle.tasks import OracleReply, OracleTask, StepFix
from learnerfit.domain.records import mode_name, split_steps

REGISTERS = ("bare", "plain", "mixed", "latex")
VERSION = "v1"
# Where the arithmetic families put their expression (basic_arithmetic, chain_sum, products).
_QUESTION_FORMS = (
    re.compile(r"^\s*Calculate\s+(?P<e>.+?)\s*\.?\s*$", re.DOTALL),
    re.compile(r"arithmetic problem:\s*(?P<e>.+?)\s*=\s*$", re.DOTALL),
    re.compile(r"multiplication:\s*(?P<e>.+?)\.\s", re.DOTALL),
)
_FINAL = re.compile(r"^\s*Final answer:\s*(?P<answer>.*?)\s*$", re.IGNORECASE)
_HASHES = re.compile(r"^\s*####\s*(?P<answer>\S.*?)\s*$")
_ORDINALS = ("First", "Then", "Next", "After that", "Then", "Next", "After that")


class Unable(Exception):
    """What the teacher cannot do, and why (the output is rejected with it)."""


@dataclass(frozen=True)
class Step:
    """One step of a solution: `expression = result`, within the words of its line (`{eq}` marks where the
    equation goes; "{eq}" alone for a bare equation); a step without an equation has expression "" (words only)."""

    expression: str
    result: Fraction | None
    words: str = "{eq}"

    @property
    def bare(self) -> bool:
        return self.words.strip() == "{eq}"

    @classmethod
    def of(cls, equation: Equation, alone: bool) -> Step:
        """The step an equation of a line is: in the line's words when it is the line's only equation (a line of
        several equations gives a bare step each)."""
        line, (start, end), (_, last_end) = equation.line, equation.spans[0], equation.spans[-1]
        expression = normalise(line[start:end])
        return cls(expression, value(expression), line[:start] + "{eq}" + line[last_end:] if alone else "{eq}")


def _number(text: str) -> Fraction:
    try:
        return value(text)
    except NotArithmetic as error:
        raise Unable(f"the reference answer {text!r} is not a number") from error


def solution_plan(problem) -> list[Step]:
    """The teacher's own steps for the problem; Unable when it cannot read it or cannot reach its answer."""
    answer = _number(problem.reference_answer)
    if problem.reference_solution.strip():
        steps = _reference_steps(problem.reference_solution)
    else:
        expression = _expression(problem.question)
        steps = [Step(o.text(), o.result) for o in operations(expression)] or [Step(fmt(value(expression)),
                                                                                     value(expression))]
    reached = next((s.result for s in reversed(steps) if s.result is not None), None)
    if reached != answer:
        raise Unable(f"its steps reach {fmt(reached) if reached is not None else 'no value'}, and the reference "
                     f"answer is {problem.reference_answer}: the teacher does not guess")
    return steps


def _expression(question: str) -> str:
    for form in _QUESTION_FORMS:
        match = form.search(question)
        if match:
            try:
                value(match.group("e"))
                return normalise(match.group("e"))
            except NotArithmetic:
                break
    raise Unable("not a problem the teacher can read: no arithmetic expression in the question (basic_arithmetic, "
                 "chain_sum, products) and no reference solution (gsm_symbolic)")


_CURRENCY = re.compile(r"[€$£¥]")
_UNIT_BEFORE_OPERATOR = re.compile(r"(\d)\s+(?:[A-Za-z][\w'-]*\s+){1,3}(?=[-+*/x×÷=])")
_TIMES = re.compile(r"(?<=\d)\s+x\s+(?=[\d(])")


def reference_line(line: str) -> str:
    """A worked solution's line with its equations in plain arithmetic: "294 pages x 2/3 = 196 pages" ->
    "294 * 2/3 = 196 pages" (currency signs, units between a number and an operator, `x` for times)."""
    line = _CURRENCY.sub("", line)
    line = _UNIT_BEFORE_OPERATOR.sub(r"\1 ", line)
    return _TIMES.sub(" * ", line)


def _reference_steps(solution: str) -> list[Step]:
    """The steps of a worked solution (gsm_symbolic's chain of thought): each right equation a step, in the words
    of its line; an equation whose sides disagree is read as words (it cannot be a step the teacher vouches for)."""
    steps = []
    for line in split_steps(solution):
        if _HASHES.match(line):
            continue
        line = reference_line(line)
        equations = [e for e in find_equations(line) if not e.wrong()]
        if not equations:
            steps.append(Step("", None, line))
            continue
        steps.extend(Step.of(equation, alone=len(equations) == 1) for equation in equations)
    return steps


# -- the learner's trace, checked ----------------------------------------------


@dataclass(frozen=True)
class Checked:
    """A trace's lines with their arithmetic corrected (and corrected values carried into later lines)."""

    lines: list[str]
    steps: list[Step]  # its equations, corrected, as steps
    first_wrong: int | None  # index of the first line whose arithmetic was wrong
    answer_line: int | None  # index of its "Final answer:" line
    unsupported: str | None  # the first operand neither in the problem nor a result of an earlier step
    step_lines: list[int]  # the line index of each step


def check_trace(trace: str, question: str = "") -> Checked:
    lines, steps, carried, step_lines = split_steps(trace), [], {}, []
    fixed, first_wrong, answer_line, unsupported = [], None, None, None
    known = {abs(n) for n in numbers(question)}  # operands a step may use: the problem's, then earlier results
    for k, line in enumerate(lines):
        if _FINAL.match(line):
            answer_line = k
        for i in range(len(find_equations(line))):  # each chain of the line in turn, on the line as corrected so far
            equation = find_equations(line)[i]
            try:
                corrected, was = equation.corrected(carried), equation.result()
            except NotArithmetic:  # e.g. a division by zero in the learner's line: left as it is
                continue
            if first_wrong is None and equation.wrong():
                first_wrong = k
            now = find_equations(corrected)[i]
            if now.result() != was:
                carried[fmt(was)] = fmt(now.result())
            step = Step.of(now, alone=len(find_equations(corrected)) == 1)
            stray = [n for n in numbers(step.expression) if abs(n) not in known]
            if unsupported is None and stray and question:
                unsupported = (f"step {k + 1} {lines[k]!r} uses {fmt(stray[0])}, neither in the problem nor an "
                               "earlier result")
            known.add(abs(now.result()))
            steps.append(step)
            step_lines.append(k)
            line = corrected
        fixed.append(line)
    return Checked(fixed, steps, first_wrong, answer_line, unsupported, step_lines)


# -- the register --------------------------------------------------------------


def _latex(expression: str) -> str:
    text = re.sub(r"(?<=[-+*/]) -(\d+(?:\.\d+)?)", r" (-\1)", expression)  # 4 - -2 -> 4 - (-2)
    return text.replace("*", r"\times").replace("/", r"\div")


def _equation(step: Step, register: str) -> str:
    plain = f"{step.expression} = {fmt(step.result)}"
    return f"{_latex(step.expression)} = {fmt(step.result)}" if register == "latex" else plain


def render(steps: Sequence[Step], answer: str, register: str) -> str:
    """A solution in the teacher's register, then the answer line the answer checker reads. bare: the learner's own
    layout, one equation per line and nothing else; plain: sentences, no LaTeX; mixed: sentences, the answer boxed
    in LaTeX; latex: every equation in LaTeX math, the answer boxed."""
    if register == "bare":
        return "\n".join([*(_equation(s, register) for s in steps if s.result is not None), f"Final answer: {answer}"])
    lines = []
    if register == "latex":
        lines.append("We work through the problem step by step, following the order of operations.")
    ordinal = 0
    for step in steps:
        if step.result is None:
            lines.append(step.words)
            continue
        equation = _equation(step, register)
        if step.bare:
            lead = _ORDINALS[min(ordinal, len(_ORDINALS) - 1)]
            ordinal += 1
            lines.append({"plain": f"{lead}, {equation}.", "mixed": f"{lead}, we compute {equation}.",
                          "latex": f"\\[ {equation} \\]"}[register])
        else:
            wrapped = f"$ {equation} $" if register == "latex" else equation
            lines.append(step.words.replace("{eq}", wrapped))
    lines.append({"plain": f"So the answer is {answer}.",
                  "mixed": f"Therefore, the answer is \\(\\boxed{{{answer}}}\\).",
                  "latex": f"Hence the final result is $\\boxed{{{answer}}}$."}[register])
    return "\n".join(lines) + f"\nFinal answer: {answer}"


# -- the Oracle ----------------------------------------------------------------


class RuleTeacher:
    def __init__(self, register: str = "mixed"):
        if register not in REGISTERS:
            raise ValueError(f"register {register!r}: choose from {', '.join(REGISTERS)}")
        self.register = register
        self.model_name = f"rule-teacher-{VERSION}/{register}"

    def prompt_ids(self, mode: int) -> list[str]:
        return [f"teacher.{mode_name(mode)}.{VERSION}"]

    def write(self, tasks: Sequence[OracleTask]) -> list[OracleReply]:
        replies = []
        for task in tasks:
            try:
                replies.append(OracleReply(Completion(self._write(task), 0, False)))
            except (Unable, NotArithmetic) as error:
                replies.append(OracleReply(Completion("", 0, False), unable=str(error)))
        return replies

    def _write(self, task: OracleTask) -> str:
        problem = task.problem
        answer = fmt(_number(problem.reference_answer))
        if task.mode == SYNTHESIZE:
            return render(solution_plan(problem), answer, self.register)
        plan = solution_plan(problem)  # also refuses a problem the teacher cannot read
        checked = check_trace(task.trace, problem.question)
        if task.mode == REFINE:
            if not checked.steps:  # nothing to correct: the teacher's own steps
                return render(plan, answer, self.register)
            self._reaches(checked, answer)
            return render(checked.steps, answer, self.register)
        if task.mode == REWRITE:
            if checked.steps:
                self._reaches(checked, answer)
            lines = list(checked.lines)
            if checked.answer_line is None:
                lines.append(f"Final answer: {answer}")
            else:
                lines[checked.answer_line] = _with_answer(lines[checked.answer_line], answer)
            return "\n".join(lines)
        raise Unable(f"mode {mode_name(task.mode)} is not written whole")

    @staticmethod
    def _reaches(checked: Checked, answer: str) -> None:
        """Refuses a trace whose reasoning is wrong, as far as the teacher can see it: a step using a number from
        nowhere, or steps that, their arithmetic right, do not reach the answer."""
        if checked.unsupported:
            raise Unable(f"{checked.unsupported}: a reasoning error, which the teacher does not rewrite")
        reached = checked.steps[-1].result
        if reached != _number(answer):
            raise Unable(f"the learner's steps, their arithmetic corrected, reach {fmt(reached)}, not the answer "
                         f"{answer}: a reasoning error, which the teacher does not rewrite")

    def fix_first_wrong_step(self, tasks: Sequence[OracleTask]) -> list[StepFix]:
        return [self._fix(task) for task in tasks]

    def _fix(self, task: OracleTask) -> StepFix:
        try:
            answer = fmt(_number(task.problem.reference_answer))
        except Unable as error:
            return StepFix(None, "", str(error))
        checked = check_trace(task.trace)
        original = split_steps(task.trace)
        past = _past_the_answer(checked, task.problem, answer)
        if checked.first_wrong is not None and (past is None or checked.first_wrong < past):
            k = checked.first_wrong
            return StepFix(k + 1, checked.lines[k], f"step {k + 1} {original[k]!r}: its arithmetic is wrong")
        if past is not None:
            # The steps had reached the answer; this one goes on past it (the learner's habit of one more step):
            # the right step here is the answer line, in the learner's form.
            return StepFix(past + 1, f"Final answer: {answer}",
                           f"step {past + 1} {original[past]!r}: goes on past the answer, which the steps reached")
        reached = checked.steps[-1].result if checked.steps else None
        if checked.answer_line is not None and reached is not None and fmt(reached) == answer and \
                _FINAL.match(original[checked.answer_line]).group("answer") != answer:
            k = checked.answer_line
            return StepFix(k + 1, _with_answer(original[k], answer),
                           f"step {k + 1} {original[k]!r}: the steps reached {answer}")
        return StepFix(None, "", "no step's arithmetic is wrong: the error is in the reasoning, which the teacher "
                                 "does not locate")


def _past_the_answer(checked: Checked, problem, answer: str) -> int | None:
    """The line of the first step after the steps reached the answer, having taken at least as many operations as
    the teacher's own solution (so an intermediate value that happens to equal the answer does not count)."""
    try:
        needed = sum(step.result is not None for step in solution_plan(problem))
    except (Unable, NotArithmetic):
        return None
    for i, step in enumerate(checked.steps[:-1]):
        if i + 1 >= needed and fmt(step.result) == answer and checked.step_lines[i + 1] > checked.step_lines[i]:
            return checked.step_lines[i + 1]
    return None


def _with_answer(line: str, answer: str) -> str:
    match = _FINAL.match(line)
    return line[: match.start("answer")] + answer + line[match.end("answer"):]

