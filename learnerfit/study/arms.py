"""The arms of a study: what each of its checkpoints is trained on.

* a curation policy: the policy's choice among the study's scored candidates (the curator's Curate);
* a style-aligned split: `style_aligned` over the rewrites alone or the repairs alone. Their costs differ, and a
  rewrite of a correct sample can equal it and is then deduplicated away (the study counts how often);
* a built set, written by the study itself for every study problem and then scored as the pipeline scores
  candidates: `format_only` (the answer line alone: how much of a gain format by itself gives), and the rule-based
  teacher's own correct solution in each register (`teacher_bare` in the learner's one-equation-per-line layout,
  then plain, mixed and latex): a dose of drift with correctness fixed.

A matched study trains every arm on the problems all of them cover, one trace each, for the same number of passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from learnerfit.domain.curation.curator import example_of, normalized
from learnerfit.domain.curation.policies import ALIGNED, POLICIES
from learnerfit.domain.ids import stable_id
from learnerfit.domain.oracle.arithmetic import NotArithmetic, fmt, value
from learnerfit.domain.oracle.selection import REPAIR, REWRITE, SYNTHESIZE
from learnerfit.domain.oracle.teacher import REGISTERS, Unable, render, solution_plan
from learnerfit.v1 import records_pb2

SPLITS = {"style_aligned_rewrite": REWRITE, "style_aligned_repair": REPAIR}
REGISTER_ARMS = {f"teacher_{register}": register for register in REGISTERS}
CONTROLS = ("format_only",)
BUILT = (*CONTROLS, *REGISTER_ARMS)
ARMS = (*POLICIES, *SPLITS, *BUILT)
ABOUT = {"format_only": "the answer line alone for every problem (how much of a gain format by itself gives)",
         **{arm: "style_aligned over the " + ("rewrites" if mode == REWRITE else "repairs") + " alone"
            for arm, mode in SPLITS.items()},
         **{arm: f"the rule-based teacher's correct solution of every problem, {register} register"
            for arm, register in REGISTER_ARMS.items()}}


HELP = (f"curation policies: {', '.join(POLICIES)}; {', '.join(SPLITS)}: style_aligned over the rewrites or the "
        f"repairs alone; format_only: {ABOUT['format_only']}; {', '.join(REGISTER_ARMS)}: the rule-based teacher's "
        "correct solution of every problem in that register (bare: the learner's own layout), a dose of drift with "
        "correctness fixed")


def curated_by(arm: str) -> str:
    """The curation policy that chooses an arm's set from the candidates ("" for a set the study builds)."""
    if arm in SPLITS:
        return "style_aligned"
    return arm if arm in POLICIES else ""


def candidates_for(arm: str, candidates: Sequence[records_pb2.Trajectory]) -> list[records_pb2.Trajectory]:
    """What an arm's policy chooses from: every candidate, or, for a split, no style-aligned output of the other
    mode."""
    mode = SPLITS.get(arm)
    return [t for t in candidates if mode is None or t.origin != ALIGNED or t.oracle_mode == mode]


def built_trajectories(arm: str, problems: Sequence[records_pb2.Problem]) -> tuple[list[records_pb2.Trajectory],
                                                                                    list[str]]:
    """A built arm's trace of every problem, to be scored (reward and drift) as the pipeline's candidates are; and
    why the problems it could not write were left out (the teacher reads only arithmetic and gsm_symbolic)."""
    written, skipped = [], []
    for problem in problems:
        if arm == "format_only":
            origin, text, model, mode = records_pb2.ORIGIN_REFERENCE, f"Final answer: {problem.reference_answer}", \
                "", records_pb2.ORACLE_MODE_UNSPECIFIED
        else:
            register = REGISTER_ARMS[arm]
            try:
                text = render(solution_plan(problem), fmt(value(problem.reference_answer)), register)
            except (Unable, NotArithmetic) as error:
                skipped.append(f"{problem.id}: {error}")
                continue
            origin, model, mode = records_pb2.ORIGIN_ORACLE_SYNTHESIZED, f"rule-teacher/{register}", SYNTHESIZE
        written.append(records_pb2.Trajectory(id=stable_id(arm, problem.id), problem=problem, origin=origin,
                                              model=model, checkpoint="base", text=text, oracle_mode=mode))
    return written, skipped


def built_set(arm: str, scored: Sequence[records_pb2.Trajectory]) -> list[records_pb2.CuratedExample]:
    """A built arm's training set: its scored traces that the answer check found correct."""
    reason = f"study arm {arm}: {ABOUT[arm]}"
    return [example_of(t, arm, reason) for t in scored if t.scores.verdict == records_pb2.VERDICT_CORRECT]


def rewrites_equal_to_parent(candidates: Sequence[records_pb2.Trajectory]) -> tuple[int, int]:
    """(style-aligned rewrites whose text is the same as the learner sample they rewrote, all such rewrites):
    an equal rewrite teaches nothing its parent does not, and deduplication drops it."""
    by_id = {t.id: t for t in candidates}
    rewrites = [t for t in candidates if t.origin == ALIGNED and t.oracle_mode == REWRITE]
    equal = sum(t.parent_id in by_id and normalized(by_id[t.parent_id].text) == normalized(t.text) for t in rewrites)
    return equal, len(rewrites)


def matched(sets: Mapping[str, Sequence[records_pb2.CuratedExample]]
            ) -> tuple[dict[str, list[records_pb2.CuratedExample]], list[str]]:
    """Every arm's set cut to the problems all the arms cover, one example each (the first by id); and those
    problems. Arms with an empty set are left out of the intersection (they train nothing either way)."""
    covering = [set(e.problem_id for e in examples) for examples in sets.values() if examples]
    shared = sorted(set.intersection(*covering)) if covering else []
    cut = {}
    for arm, examples in sets.items():
        first: dict[str, records_pb2.CuratedExample] = {}
        for example in sorted(examples, key=lambda e: e.id):
            if example.problem_id in shared:
                first.setdefault(example.problem_id, example)
        cut[arm] = [first[p] for p in shared if p in first]
    return cut, shared


def check_arm(name: str) -> None:
    if name not in ARMS:
        raise ValueError(f"unknown arm {name[:80]!r}; policies: {', '.join(POLICIES)}; the style-aligned split: "
                         f"{', '.join(SPLITS)}; built sets: {', '.join(BUILT)}")
