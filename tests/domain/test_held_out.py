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


def test_a_family_studys_held_out_set_comes_from_the_same_family_and_options_and_a_files_from_its_later_rows(tmp_path):
    import argparse
    import json

    from learnerfit.cli.study import held_out_problems, study_problems

    options = ["min_terms=3", "max_terms=3", "min_digits=1", "max_digits=1", 'operators=["+"]']
    args = argparse.Namespace(problems="basic_arithmetic", eval_family="basic_arithmetic", family_option=options,
                              n=16, problem_seed=0, eval_problems=8)
    training = study_problems(args)
    problems, about = held_out_problems(args, training)
    assert len(problems) == 8 and about["shared_with_training"] == 0
    assert all(p.question.count("+") == 2 for p in problems)  # three one-digit terms, as the study's options say
    assert "'max_terms': 3" in about["source"].replace('"', "'")
    rows = tmp_path / "problems.jsonl"
    rows.write_text("".join(json.dumps({"question": f"Calculate {i} + 2.", "answer": str(i + 2)}) + "\n"
                            for i in range(6)))
    args = argparse.Namespace(problems=str(rows), eval_family="basic_arithmetic", family_option=None, n=4,
                              problem_seed=0, eval_problems=8)
    problems, about = held_out_problems(args, study_problems(args))
    assert [p.question for p in problems] == ["Calculate 4 + 2.", "Calculate 5 + 2."]  # the rows after the first 4
