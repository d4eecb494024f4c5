"""A held-out set shares no question with what is trained on, however the question is cased, spaced or ended."""

from __future__ import annotations

from learnerfit.domain.problems import EASY_ARITHMETIC, from_reasoning_gym, held_out, normalized_question
from learnerfit.v1 import records_pb2


def _problem(question: str, answer: str = "0") -> records_pb2.Problem:
    return records_pb2.Problem(question=question, reference_answer=answer)


def test_questions_that_differ_only_in_case_spacing_or_closing_punctuation_are_one():
    assert normalized_question("Calculate 1 - 6.") == normalized_question("  calculate 1  -   6 ?") == "calculate 1 - 6"
    assert normalized_question("Calculate 1 - 6.") != normalized_question("Calculate 1 - 7.")


def test_held_out_problems_skip_training_questions_and_repeats_and_say_how_many_overlapped():
    training = [_problem("Calculate 1 - 6."), _problem("Calculate 7 - 4.")]
    candidates = [_problem("calculate 1 -  6", "-5"), _problem("Calculate 2 + 2.", "4"), _problem("Calculate 2 + 2", "4"),
                  _problem("Calculate 7 - 4!", "3"), _problem("Calculate 3 + 3.", "6"), _problem("Calculate 5 + 5.")]
    chosen, overlapping = held_out(candidates, training, count=2)
    assert [p.question for p in chosen] == ["Calculate 2 + 2.", "Calculate 3 + 3."]
    assert overlapping == 2  # "1 - 6" and "7 - 4" are training questions; the repeated "2 + 2" is not counted
    assert len({p.id for p in chosen}) == 2 and all(p.id.startswith("held-out-") for p in chosen)
    assert held_out(candidates, training, count=2)[0] == chosen  # stable ids: the same set every time


def test_the_easy_family_repeats_itself_so_a_held_out_draw_is_disjoint_only_after_filtering():
    """What the published study run got wrong: the easy family has a few hundred distinct questions, so a held-out
    draw from another seed shares questions with a training draw unless they are set apart."""
    training = from_reasoning_gym("basic_arithmetic", 128, seed=0, options=EASY_ARITHMETIC)
    pool = from_reasoning_gym("basic_arithmetic", 128, seed=10_000, options=EASY_ARITHMETIC)
    trained_on = {normalized_question(p.question) for p in training}
    assert any(normalized_question(p.question) in trained_on for p in pool)  # the overlap is real
    chosen, overlapping = held_out(pool, training, count=32)
    assert overlapping > 0 and len(chosen) == 32
    assert not {normalized_question(p.question) for p in chosen} & trained_on
