"""The study's arms: the sets it writes itself, the style-aligned split, matching, and the count of rewrites that
equal their parent, on crafted candidates whose answers are known."""

from __future__ import annotations

import pytest

from learnerfit.domain.oracle.selection import REPAIR, REWRITE
from learnerfit.study.arms import (
    built_set,
    built_trajectories,
    candidates_for,
    check_arm,
    curated_by,
    matched,
    rewrites_equal_to_parent,
)
from learnerfit.v1 import records_pb2

LEARNER, ALIGNED = records_pb2.ORIGIN_LEARNER_SAMPLE, records_pb2.ORIGIN_STYLE_ALIGNED


def _problem(i: int, question: str, answer: str) -> records_pb2.Problem:
    return records_pb2.Problem(id=f"p{i}", batch_id="b", question=question, reference_answer=answer)


def _trace(tid: str, problem, origin, text: str, mode: int = 0, parent: str = "") -> records_pb2.Trajectory:
    return records_pb2.Trajectory(id=tid, problem=problem, origin=origin, text=text, oracle_mode=mode,
                                  parent_id=parent)


def test_register_arms_write_every_readable_problem_in_their_register_and_say_why_others_are_left_out():
    problems = [_problem(0, "Calculate 7 - 2 + 1.", "6"), _problem(1, "What is the capital of France?", "Paris")]
    bare, skipped = built_trajectories("teacher_bare", problems)
    assert [t.text for t in bare] == ["7 - 2 = 5\n5 + 1 = 6\nFinal answer: 6"]
    assert len(skipped) == 1 and skipped[0].startswith("p1: ") and "not a number" in skipped[0]
    latex, _ = built_trajectories("teacher_latex", problems)
    assert "\\boxed{6}" in latex[0].text and latex[0].text.endswith("Final answer: 6")
    assert latex[0].id != bare[0].id and latex[0].checkpoint == "base"
    control, skipped = built_trajectories("format_only", problems)
    assert [t.text for t in control] == ["Final answer: 6", "Final answer: Paris"] and not skipped
    assert {t.origin for t in control} == {records_pb2.ORIGIN_REFERENCE}


def test_a_built_set_keeps_what_the_answer_check_found_correct_as_training_examples():
    problem = _problem(0, "Calculate 1 + 1.", "2")
    [right] = built_trajectories("teacher_plain", [problem])[0]
    wrong = records_pb2.Trajectory()
    wrong.CopyFrom(right)
    right.scores.verdict = records_pb2.VERDICT_CORRECT
    wrong.id, wrong.scores.verdict = "other", records_pb2.VERDICT_INCORRECT
    [example] = built_set("teacher_plain", [right, wrong])
    assert example.trajectory_id == right.id and example.policy == "teacher_plain"
    assert [m.role for m in example.messages][-1] == "assistant" and example.messages[-1].content == right.text


def test_the_split_arms_see_only_their_own_style_aligned_mode_and_equal_rewrites_are_counted():
    problem = _problem(0, "Calculate 1 + 1.", "2")
    sample = _trace("s0", problem, LEARNER, "1 + 1 = 2\nFinal answer: 2")
    same = _trace("w0", problem, ALIGNED, "1 + 1 = 2\n Final answer: 2", REWRITE, parent="s0")  # spacing only
    changed = _trace("w1", problem, ALIGNED, "1 + 1 = 2\nSo: 2\nFinal answer: 2", REWRITE, parent="s0")
    repair = _trace("r0", problem, ALIGNED, "1 + 1 = 2\nFinal answer: 2", REPAIR, parent="s0")
    candidates = [sample, same, changed, repair]
    assert [t.id for t in candidates_for("style_aligned_rewrite", candidates)] == ["s0", "w0", "w1"]
    assert [t.id for t in candidates_for("style_aligned_repair", candidates)] == ["s0", "r0"]
    assert [t.id for t in candidates_for("utility", candidates)] == ["s0", "w0", "w1", "r0"]
    assert curated_by("style_aligned_repair") == "style_aligned" and curated_by("teacher_bare") == ""
    assert rewrites_equal_to_parent(candidates) == (1, 2)


def test_matching_cuts_every_arm_to_the_problems_all_of_them_cover_one_example_each():
    def example(eid: str, problem: str) -> records_pb2.CuratedExample:
        return records_pb2.CuratedExample(id=eid, problem_id=problem)

    sets = {"a": [example("a1", "p1"), example("a2", "p2"), example("a3", "p3")],
            "b": [example("b2", "p2"), example("b3", "p3"), example("b3x", "p3")],
            "empty": []}
    cut, shared = matched(sets)
    assert shared == ["p2", "p3"]
    assert {arm: [e.id for e in examples] for arm, examples in cut.items()} == \
        {"a": ["a2", "a3"], "b": ["b2", "b3"], "empty": []}


def test_an_unknown_arm_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown arm 'teacher_prose'.*teacher_bare"):
        check_arm("teacher_prose")
