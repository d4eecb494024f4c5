"""The style aligner's logic.

`rewrite` (the paper's Style-Aligned Refinement): the Oracle repairs a learner trace
while copying the learner's style, told concretely by a style card measured on the
learner's own recent samples. `repair` (beyond the paper): for a trace the learner got
wrong, the Oracle names the first wrong step and rewrites only that step in the
learner's style; the learner itself continues from the repaired prefix; the result is
kept only if its answer verifies (the writer's guardrails). Both keep much of the
learner's text, and are rejected when they do not (min_overlap).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from learnerfit.domain.inference import Completion, SamplingParams, TextGenerator
from learnerfit.domain.oracle.guardrails import rejection
from learnerfit.domain.oracle.selection import REPAIR, REWRITE, tasks
from learnerfit.domain.oracle.tasks import OracleTask
from learnerfit.domain.oracle.writer import Draft, OracleWriter
from learnerfit.domain.prompts import learner_conversation
from learnerfit.domain.records import split_steps
from learnerfit.domain.style import StyleCard
from learnerfit.errors import InvalidInput
from learnerfit.recent import Recent
from learnerfit.v1 import records_pb2


class StyleAligner:
    def __init__(self, writer: OracleWriter, learner: TextGenerator, learner_params: SamplingParams,
                 style_window: int, remember: int = 100_000):
        self.writer = writer
        self.learner = learner
        self.learner_params = learner_params
        self.recent: deque[str] = deque(maxlen=style_window)  # the learner's own recent samples
        self._repaired = Recent(remember)  # problems whose one repair was already asked for

    def style_card(self, fallback: Sequence[records_pb2.Trajectory] = ()) -> StyleCard:
        return StyleCard.from_samples(list(self.recent) or [t.text for t in fallback])

    # -- the stream ------------------------------------------------------------

    def __call__(self, trajectories: Sequence[records_pb2.Trajectory]) -> list[records_pb2.Trajectory]:
        learner = [t for t in trajectories if t.origin == records_pb2.ORIGIN_LEARNER_SAMPLE]
        self.recent.extend(t.text for t in learner if t.text.strip())
        card = self.style_card()
        rewrites = [t for t in learner if REWRITE in tasks(t)]
        # One repair per problem (a solved copy of it is enough, and each repair costs three model calls): the first
        # of its samples that asks for one and is not repaired yet.
        chosen: dict[tuple[str, str], records_pb2.Trajectory] = {}
        for t in learner:
            key = (t.problem.batch_id, t.problem.id)
            if REPAIR in tasks(t) and key not in self._repaired:
                chosen.setdefault(key, t)
        repairs = [t for t in chosen.values() if not self.writer.already_written(self.repair_draft(t, card))]
        outputs = self.writer.write(self.writer.unwritten([self.rewrite_draft(t, card) for t in rewrites])
                                    + self.repair_drafts(repairs, card))
        for key in chosen:  # marked only once the repair exists: a failed call is retried, not skipped
            self._repaired.add(key)
        return outputs

    # -- gRPC ------------------------------------------------------------------

    def align(self, trajectories: Sequence[records_pb2.Trajectory], mode: int) -> list[records_pb2.Trajectory]:
        if mode not in (REWRITE, REPAIR):
            raise InvalidInput("mode", "must be ORACLE_MODE_REWRITE or ORACLE_MODE_REPAIR")
        repair = mode == REPAIR
        card = self.style_card(fallback=trajectories)
        drafts = self.repair_drafts(trajectories, card) if repair else [self.rewrite_draft(t, card)
                                                                       for t in trajectories]
        return self.writer.write(drafts)

    # -- the two modes -----------------------------------------------------------

    def rewrite_draft(self, trajectory: records_pb2.Trajectory, card: StyleCard) -> Draft:
        return Draft(OracleTask(REWRITE, trajectory.problem, trace=trajectory.text, style_card=card),
                     records_pb2.ORIGIN_STYLE_ALIGNED, parent=trajectory, keeps_parent=True)

    def repair_draft(self, trajectory: records_pb2.Trajectory, card: StyleCard) -> Draft:
        return Draft(OracleTask(REPAIR, trajectory.problem, trace=trajectory.text, style_card=card),
                     records_pb2.ORIGIN_STYLE_ALIGNED, parent=trajectory, keeps_parent=True)

    def repair_drafts(self, trajectories: Sequence[records_pb2.Trajectory], card: StyleCard) -> list[Draft]:
        drafts = [self.repair_draft(t, card) for t in trajectories]
        # The Oracle's part is asked for here, before the writer, within each batch's budget.
        fixes = self.writer.ask(drafts, self.writer.oracle.fix_first_wrong_step, lambda fix: fix.usage)
        steps = [split_steps(t.text) for t in trajectories]
        todo = [i for i, fix in fixes.items() if fix.step is not None]
        prefixes = {i: "\n".join([*steps[i][: fixes[i].step - 1], fixes[i].line]) + "\n" for i in todo}
        continued = self.learner.generate([learner_conversation(trajectories[i].problem) for i in todo],
                                          self.learner_params, prefixes=[prefixes[i] for i in todo]) if todo else []
        finished = {i: samples[0] for i, samples in zip(todo, continued, strict=True)}
        for i, fix in fixes.items():
            draft = drafts[i]
            draft.usage = fix.usage  # the Oracle's two requests; the learner's continuation is not Oracle spend
            draft.notes |= {"repair.located": fix.located[:200], "repair.continued_by": self.learner.model_name}
            if i in finished:
                draft.notes["repair.step"] = str(fix.step)
                draft.completion = finished[i]
            else:
                draft.completion = Completion("", 0, False)
                draft.rejection = rejection("no_wrong_step",
                                            f"the Oracle named no step of the {len(steps[i])} as wrong")
        return drafts
