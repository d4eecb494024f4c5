"""The rule-based teacher on crafted learner traces with known wrong steps, and on every family it claims."""

from __future__ import annotations

import pytest

from learnerfit.domain.answers import extract_final_answer
from learnerfit.domain.oracle.arithmetic import find_equations, value
from learnerfit.domain.oracle.selection import REFINE, REPAIR, REWRITE, SYNTHESIZE
from learnerfit.domain.oracle.tasks import OracleTask
from learnerfit.domain.oracle.teacher import RuleTeacher, reference_line
from learnerfit.domain.problems import EASY_ARITHMETIC, from_reasoning_gym
from learnerfit.domain.records import split_steps
from learnerfit.domain.style import latex_density
from learnerfit.v1 import records_pb2

PROBLEM = records_pb2.Problem(question="Calculate 3 + 4 * 2 - 5.", reference_answer="6")
# The learner's trace, its second step wrong (9 for 8): its third step then carries the wrong value, yet ends on the
# right answer by a second slip; a correct sample by verdict, wrong on the way.
LUCKY = "4 * 2 = 9\n3 + 9 = 12\n12 - 5 = 6\nFinal answer: 6"


def _write(teacher: RuleTeacher, mode: int, trace: str = "", problem=PROBLEM):
    [reply] = teacher.write([OracleTask(mode, problem, trace=trace)])
    return reply


def _every_equation_right(text: str, quoted: str = "") -> int:
    """How many equations the text holds; fails on any whose sides differ. Lines the teacher quoted from a worked
    reference solution as words, claiming no step there (`quoted`; e.g. "half * 186 = 93", which reads as
    186 = 93), are not checked."""
    words = {reference_line(line) for line in split_steps(quoted)
             if not any(not e.wrong() for e in find_equations(reference_line(line)))}
    checked = 0
    for line in split_steps(text):
        if line in words:
            continue
        for piece in line.replace("\\(", "\n").replace("\\)", "\n").replace("$", "\n").replace("\\[", "\n") \
                .replace("\\]", "\n").splitlines():
            for equation in find_equations(piece.replace("\\times", "*").replace("\\div", "/")):
                assert not equation.wrong(), f"wrong equation in the teacher's text: {line!r}"
                checked += 1
    return checked


def test_repair_finds_the_first_wrong_step_and_fixes_it_in_the_learners_notation():
    teacher = RuleTeacher()
    [fix] = teacher.fix_first_wrong_step([OracleTask(REPAIR, PROBLEM, trace="4 * 2 = 8\n3 + 8 = 12\n12 - 5 = 8\n"
                                                                                 "Final answer: 8")])
    assert (fix.step, fix.line) == (2, "3 + 8 = 11")  # the second step, not the third (also wrong)
    [fix] = teacher.fix_first_wrong_step([OracleTask(REPAIR, PROBLEM, trace="Step 1: 4 x 2 gives 4*2=9.\n...")])
    assert (fix.step, fix.line) == (1, "Step 1: 4 x 2 gives 4*2=8.")  # the line's own words and spacing kept
    [fix] = teacher.fix_first_wrong_step([OracleTask(REPAIR, PROBLEM, trace="4 * 2 = 8\n3 + 8 = 11\n11 - 5 = 6\n"
                                                                                 "Final answer: 5")])
    assert (fix.step, fix.line) == (4, "Final answer: 6")  # every step right, the answer line not


def test_repair_names_no_step_when_the_error_is_in_the_reasoning():
    # Right arithmetic on the wrong decomposition (3 + 4 first): the teacher does not guess where the reasoning went.
    [fix] = RuleTeacher().fix_first_wrong_step([OracleTask(REPAIR, PROBLEM, trace="3 + 4 = 7\n7 * 2 = 14\n"
                                                                                     "14 - 5 = 9\nFinal answer: 9")])
    assert fix.step is None and "reasoning" in fix.located


def test_rewrite_keeps_the_learners_lines_and_corrects_wrong_values_where_they_are_carried():
    reply = _write(RuleTeacher("latex"), REWRITE, LUCKY)  # the register never touches a rewrite
    assert reply.unable is None
    assert reply.completion.text == "4 * 2 = 8\n3 + 8 = 11\n11 - 5 = 6\nFinal answer: 6"
    assert _every_equation_right(reply.completion.text) == 3
    plain = _write(RuleTeacher(), REWRITE, "Here 4 * 2 = 8, then 3 + 8 = 11.\n11 - 5 = 6\nFinal answer: 6")
    assert plain.completion.text == "Here 4 * 2 = 8, then 3 + 8 = 11.\n11 - 5 = 6\nFinal answer: 6"  # nothing to fix


def test_refine_corrects_the_learners_steps_and_writes_them_in_the_teachers_register():
    for register, marks, absent in (("plain", ["First, ", "So the answer is 6."], "\\"),
                                    ("mixed", ["we compute 4 * 2 = 8.", "\\(\\boxed{6}\\)"], "$"),
                                    ("latex", ["\\[ 4 \\times 2 = 8 \\]", "$\\boxed{6}$"], "First")):
        reply = _write(RuleTeacher(register), REFINE, LUCKY)
        text = reply.completion.text
        assert reply.unable is None and all(mark in text for mark in marks) and absent not in text, text
        assert _every_equation_right(text) == 3 and extract_final_answer(text)[0] == "6"
        assert "11 - 5" in text  # the learner's own steps, corrected, not the teacher's plan retold


def test_refine_and_rewrite_refuse_a_trace_whose_reasoning_is_wrong():
    wrong_order = "3 + 4 = 7\n7 * 2 = 14\n14 - 8 = 6\nFinal answer: 6"  # right arithmetic, lucky answer
    for mode in (REFINE, REWRITE):
        reply = _write(RuleTeacher(), mode, wrong_order)
        assert reply.completion.text == "" and "reasoning error" in reply.unable, reply


def test_synthesize_in_each_register_is_right_and_the_registers_drift_in_order():
    texts = {}
    for register in ("bare", "plain", "mixed", "latex"):
        text = _write(RuleTeacher(register), SYNTHESIZE).completion.text
        assert _every_equation_right(text) == 3 and text.endswith("Final answer: 6")
        texts[register] = text
    # bare is the learner's own layout: one equation per line, then the answer line, no words.
    assert texts["bare"] == "4 * 2 = 8\n3 + 8 = 11\n11 - 5 = 6\nFinal answer: 6"
    assert latex_density(texts["plain"]) == 0 < latex_density(texts["mixed"]) < latex_density(texts["latex"])
    assert len(texts["bare"]) < len(texts["plain"])


@pytest.mark.parametrize(("family", "options"), [
    ("basic_arithmetic", {}), ("basic_arithmetic", EASY_ARITHMETIC), ("chain_sum", {}), ("products", {}),
    ("gsm_symbolic", {})])
def test_every_problem_of_the_families_it_claims_gets_a_right_solution(family, options):
    teacher = RuleTeacher()
    problems = from_reasoning_gym(family, 25, seed=5, options=options)
    replies = teacher.write([OracleTask(SYNTHESIZE, p) for p in problems])
    unable = [(p.question, r.unable) for p, r in zip(problems, replies, strict=True) if r.unable]
    # gsm_symbolic's worked solutions are free text; a few it cannot follow (e.g. "2(27+21)", or an equation that
    # is false as written, "50 / 20 = 2" racks): those it refuses, by name. 21 of 200 at seed 5.
    assert len(unable) <= (len(problems) // 5 if family == "gsm_symbolic" else 0), unable
    for problem, reply in zip(problems, replies, strict=True):
        answer, _ = extract_final_answer(reply.completion.text)
        assert value(answer) == value(problem.reference_answer), (problem.question, reply.completion.text)
        assert _every_equation_right(reply.completion.text, problem.reference_solution) >= 1


def test_what_it_cannot_read_is_refused_with_a_reason_never_guessed():
    teacher = RuleTeacher()
    prose = records_pb2.Problem(question="What is the capital of France?", reference_answer="Paris")
    disagreeing = records_pb2.Problem(question="Calculate 2 + 2.", reference_answer="5")
    unreadable = records_pb2.Problem(question="Find x if x squared is 9.", reference_answer="3")
    replies = teacher.write([OracleTask(SYNTHESIZE, p) for p in (prose, disagreeing, unreadable)])
    assert [r.completion.text for r in replies] == ["", "", ""]
    assert "not a number" in replies[0].unable
    assert "reach 4, and the reference answer is 5" in replies[1].unable
    assert "no arithmetic expression in the question" in replies[2].unable
    [fix] = teacher.fix_first_wrong_step([OracleTask(REPAIR, prose, trace="Paris\nFinal answer: Lyon")])
    assert fix.step is None and "not a number" in fix.located


def test_outputs_name_the_teacher_and_its_register():
    teacher = RuleTeacher("latex")
    assert teacher.model_name == "rule-teacher-v1/latex"
    assert teacher.prompt_ids(REWRITE) == ["teacher.rewrite.v1"]
    with pytest.raises(ValueError, match="register 'loud'"):
        RuleTeacher("loud")


def test_repair_stops_a_trace_that_goes_on_past_the_answer():
    """SmolLM2's habit on two-term problems: the right step, then one more ("1 + 5 = 6" then "5 + 6 = 11")."""
    problem = records_pb2.Problem(question="Calculate 1 + 5.", reference_answer="6")
    [fix] = RuleTeacher().fix_first_wrong_step([OracleTask(REPAIR, problem, trace="1 + 5 = 6\n5 + 6 = 11\n"
                                                                                   "Final answer: 11")])
    assert (fix.step, fix.line) == (2, "Final answer: 6") and "past the answer" in fix.located
    # An intermediate value equal to the answer is not the end: 2 * 3 = 6 first, of three operations.
    longer = records_pb2.Problem(question="Calculate 2 * 3 - 6 + 6.", reference_answer="6")
    [fix] = RuleTeacher().fix_first_wrong_step([OracleTask(REPAIR, longer, trace="2 * 3 = 6\n6 - 6 = 1\n"
                                                                                  "1 + 6 = 7\nFinal answer: 7")])
    assert (fix.step, fix.line) == (2, "6 - 6 = 0")
