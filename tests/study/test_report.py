"""The study report's reading of known outcomes: which pairs it calls resolved, the power it states, the register
dose and the format share, on held-out outcomes built so the answers are known."""

from __future__ import annotations

from learnerfit.study.report import PolicyResult, Study, comparisons, detectable, write_report
from learnerfit.v1 import records_pb2

PROBLEMS = [f"h{i}" for i in range(80)]


def _outcomes(tenths: int, seeds: int, shift: int = 0) -> list[dict[str, list[bool]]]:
    """Exactly tenths/10 of the samples right, spread over the problems (shifted per arm and seed)."""
    return [{p: [(i * 4 + j + shift + 3 * seed) % 10 < tenths for j in range(4)] for i, p in enumerate(PROBLEMS)}
            for seed in range(seeds)]


def _examples(arm: str, ppl: float) -> list[records_pb2.CuratedExample]:
    scores = records_pb2.Scores(verdict=records_pb2.VERDICT_CORRECT, ppl=ppl, reward=1.0, token_count=12,
                                step_accuracy=1.0, steps_checked=1, mean_token_rank=2.0, rsr=1.0)
    return [records_pb2.CuratedExample(id=f"{arm}-{i}", problem_id=f"p{i}", policy=arm, scores=scores,
                                       origin=records_pb2.ORIGIN_ORACLE_SYNTHESIZED) for i in range(8)]


def _study(tmp_path) -> Study:
    arms = [PolicyResult("format_only", _examples("format_only", 3.0), ["v1", "v2"], _outcomes(3, 2)),
            PolicyResult("teacher_bare", _examples("teacher_bare", 1.5), ["v3", "v4"], _outcomes(6, 2)),
            PolicyResult("teacher_latex", _examples("teacher_latex", 6.0), ["v5", "v6"], _outcomes(6, 2, shift=5))]
    settings = {"learner": "smollm2", "problems": "basic_arithmetic", "oracle": "rule-based teacher", "k": 4,
                "budget_steps": 8, "budget_epochs": 2.0, "seeds": 2, "eval_problems": 80, "eval_k": 4}
    return Study(settings=settings, candidates=[], policies=arms, problems=8,
                 base_outcomes=_outcomes(1, 1)[0], arms={"matched_problems": 8})


def test_the_report_resolves_what_is_far_apart_and_states_the_power_it_had(tmp_path):
    study = _study(tmp_path)
    compared = comparisons(study)
    by_pair = {(c.a, c.b): c for c in compared}
    assert len(compared) == 6  # base and three arms
    # 0.6 against 0.1 on 80 problems x 4: resolved; bare against latex (0.6 each, on other problems): not.
    assert by_pair[("teacher_bare", "base")].resolved and by_pair[("format_only", "base")].resolved
    assert not by_pair[("teacher_latex", "teacher_bare")].resolved
    smallest = detectable(compared)
    assert 0.05 < smallest < 0.3
    paths = write_report(study, tmp_path)
    summary = paths["markdown"].read_text()
    assert f"resolved with 80% power when its true difference is about {smallest:.2f}" in summary
    assert "2 training seeds per arm" in summary and "2 passes over each set" in summary
    assert "every arm trained on the same 8 problems" in summary
    assert "dose of drift with correctness fixed: bare (learner ppl 1.50)" in summary
    assert "latex (learner ppl 6.00)" in summary
    # format_only's gain over the base is about 0.2 of bare's 0.5: the share format alone accounts for.
    fmt = study.policies[0].accuracy - study.base_accuracy
    bare = study.policies[1].accuracy - study.base_accuracy
    assert f"teacher_bare {fmt / bare:.0%}" in summary
    # One checkpoint per seed in the arms table, each seed's accuracy shown.
    assert "| teacher_bare | 8 of 8 |" in summary and "v3, v4" in summary
    assert " / ".join(f"{a:.3f}" for a in study.policies[1].per_seed) in summary


def test_the_report_says_what_the_oracle_data_of_each_arm_cost(tmp_path):
    study = _study(tmp_path)
    priced = records_pb2.OracleUsage(prompt_tokens=100, completion_tokens=20, cost_usd=0.0002,
                                     source=records_pb2.USAGE_SOURCE_REPORTED)
    study.candidates = [records_pb2.Trajectory(id=f"t{i}", origin=records_pb2.ORIGIN_ORACLE_SYNTHESIZED,
                                               oracle_usage=priced) for i in range(8)]
    study.candidates.append(records_pb2.Trajectory(id="learner", origin=records_pb2.ORIGIN_LEARNER_SAMPLE))
    for i, example in enumerate(study.policies[0].examples):
        example.trajectory_id = f"t{i}" if i < 3 else "learner"  # 3 of format_only's 8 examples are the Oracle's
    summary = write_report(study, tmp_path)["markdown"].read_text()
    assert "## What the Oracle's data cost" in summary
    assert "| accepted oracle_synthesized outputs | 8 | 800 | 160 | 0.001600 | 0 |" in summary
    assert "| arm format_only: its training set | 3 | 300 | 60 | 0.000600 | 0 |" in summary
    assert "arm teacher_bare" not in summary  # no Oracle-written example in its set
