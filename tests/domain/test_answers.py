"""Final-answer extraction and math-verify checks (in the checker's worker process)."""

from __future__ import annotations

import pytest

from learnerfit.domain.answers import extract_final_answer
from learnerfit.models.answers import AnswerChecker
from learnerfit.domain.quality import RewardScorer
from learnerfit.v1 import records_pb2


@pytest.fixture(scope="module")
def checker():
    answer_checker = AnswerChecker(timeout_s=5)
    yield answer_checker
    answer_checker.close()


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("3 + 4 = 7\nFinal answer: 7", "7"),
        ("so it is 12.\nFinal Answer: $\\frac{1}{2}$.", "\\frac{1}{2}"),
        ("The final answer is 42", "42"),
        ("work\n#### 1,234", "1,234"),
        ("We get \\boxed{\\frac{\\sqrt{2}}{2}} in the end. Final answer: 3", "\\frac{\\sqrt{2}}{2}"),
        ("Final answer: 5\nWait, no.\nFinal answer: **6**", "6"),
    ],
)
def test_the_final_answer_is_taken_from_boxed_hashes_or_the_last_final_answer_line(text, answer):
    assert extract_final_answer(text)[0] == answer


@pytest.mark.parametrize("text", ["3 + 4 = 7", "The answer should be about 7 or so", "\\boxed{7", "Final answer:  "])
def test_a_text_without_a_final_answer_marker_yields_no_answer(text):
    answer, why = extract_final_answer(text)
    assert answer is None
    assert why


@pytest.mark.parametrize(
    ("answer", "reference", "verdict"),
    [
        ("7", "7", records_pb2.VERDICT_CORRECT),
        ("0.5", "\\frac{1}{2}", records_pb2.VERDICT_CORRECT),
        ("\\sqrt{2}", "\\sqrt{2}", records_pb2.VERDICT_CORRECT),
        ("3\\pi", "3\\pi", records_pb2.VERDICT_CORRECT),
        ("(1, 2)", "(1,2)", records_pb2.VERDICT_CORRECT),
        ("50", "50\\%", records_pb2.VERDICT_CORRECT),
        ("3/4", "\\frac{3}{4}", records_pb2.VERDICT_CORRECT),
        ("\\frac{6}{8}", "0.75", records_pb2.VERDICT_CORRECT),
        ("\\dfrac{1}{3}", "\\frac{1}{3}", records_pb2.VERDICT_CORRECT),
        ("0.33", "\\frac{1}{3}", records_pb2.VERDICT_INCORRECT),
        ("8", "7", records_pb2.VERDICT_INCORRECT),
        ("3", "3\\pi", records_pb2.VERDICT_INCORRECT),
    ],
)
def test_answers_are_verified_against_the_reference_as_latex(checker, answer, reference, verdict):
    [(got, detail)] = checker.check([(answer, reference)])
    assert got == verdict, detail


def test_restating_the_question_does_not_count_as_the_right_answer(checker):
    # The whole text contains "3 + 4", which math-verify alone could read as 7.
    problem = records_pb2.Problem(id="p", question="Calculate 3 + 4.", reference_answer="7")
    trajectory = records_pb2.Trajectory(id="t", problem=problem, text="We need 3 + 4.\nFinal answer: 8")
    [scored] = RewardScorer(checker)([trajectory])
    assert scored.final_answer == "8"
    assert scored.scores.verdict == records_pb2.VERDICT_INCORRECT


def test_a_trajectory_with_no_answer_is_marked_unparsed_not_failed(checker):
    problem = records_pb2.Problem(id="p", question="Calculate 3 + 4.", reference_answer="7")
    trajectories = [
        records_pb2.Trajectory(id="a", problem=problem, text="I like numbers."),
        records_pb2.Trajectory(id="b", problem=problem, text="3 + 4 = 7\nFinal answer: 7"),
    ]
    [unparsed, correct] = RewardScorer(checker)(trajectories)
    assert unparsed.scores.verdict == records_pb2.VERDICT_UNPARSED
    assert "Final answer" in unparsed.scores.verdict_detail
    assert correct.scores.verdict == records_pb2.VERDICT_CORRECT
    assert correct.final_answer == "7"


def test_a_pathological_answer_is_stopped_by_the_per_check_timeout_inside_the_worker():
    slow = AnswerChecker(timeout_s=1)
    try:
        # sympy would try to evaluate the tower exactly; math-verify's own 1 s limit stops the comparison,
        # which then reads as "differs". Had the worker hung instead, the outer limit would have replaced it
        # and both checks would read CHECK_FAILED ("answer check worker failed").
        [(verdict, detail), (fine, _)] = slow.check([("9^{9^{9^{9^{9}}}} - 1", "7"), ("7", "7")])
    finally:
        slow.close()
    assert (verdict, detail) == (records_pb2.VERDICT_INCORRECT, "'9^{9^{9^{9^{9}}}} - 1' differs from '7'")
    assert fine == records_pb2.VERDICT_CORRECT  # the next check in the same worker is unaffected


_HOLDS_A_CHECKER = """
import time
from learnerfit.models.answers import AnswerChecker
checker = AnswerChecker(timeout_s=5)
checker.warm_up()
print(*[p.pid for p in checker._pool._processes.values()], flush=True)
time.sleep(600)
"""


def test_the_check_worker_dies_with_a_service_that_is_killed():
    import os
    import signal
    import subprocess
    import sys
    import time

    service = subprocess.Popen([sys.executable, "-c", _HOLDS_A_CHECKER], stdout=subprocess.PIPE, text=True)
    [worker] = [int(pid) for pid in service.stdout.readline().split()]
    service.send_signal(signal.SIGKILL)
    service.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return  # gone with its parent
        time.sleep(0.1)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError(f"answer-check worker {worker} outlived its killed service")


def test_the_first_answer_a_text_gives_is_read_by_the_same_precedence_as_the_last():
    from learnerfit.domain.answers import extract_first_answer

    rambling = "3 + 4 = 7\nFinal answer: 7\nWait, 3 + 4 = 8\nFinal answer: 8"
    assert (extract_first_answer(rambling), extract_final_answer(rambling)[0]) == ("7", "8")
    assert extract_first_answer(r"so \boxed{5}, or \boxed{6}") == "5"
    assert extract_first_answer("#### 12\n#### 13") == "12"
    assert extract_first_answer("no answer here") is None
