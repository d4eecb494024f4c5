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

import re
from collections import OrderedDict, deque
from collections.abc import Sequence

from learnerfit.v1 import records_pb2
from services.backends.base import Completion, SamplingParams, TextGenerator
from services.common.prompts import learner_conversation
from services.common.style import StyleCard
from services.common.trajectories import split_steps
from services.oracle.prompts import template
from services.oracle.selection import REPAIR, REWRITE, tasks
from services.oracle.writer import Draft, OracleWriter

_FIRST_NUMBER = re.compile(r"-?\d+")


def first_wrong_step(reply: str, steps: int) -> int | None:
    """The 1-based step the Oracle named, or None when it named none (0) or nothing usable."""
    match = _FIRST_NUMBER.search(reply)
    if match is None:
        return None
    number = int(match.group(0))
    return number if 1 <= number <= steps else None


class StyleAligner:
    def __init__(self, writer: OracleWriter, learner: TextGenerator | None, learner_params: SamplingParams,
                 style_window: int, remember: int = 100_000):
        self.writer = writer
        self.learner = learner
        self.learner_params = learner_params
        self.recent: deque[str] = deque(maxlen=style_window)  # the learner's own recent samples
        self.remember = remember
        self._repaired: OrderedDict[tuple[str, str], None] = OrderedDict()

    def style_card(self, fallback: Sequence[records_pb2.Trajectory] = ()) -> StyleCard:
        return StyleCard.from_samples(list(self.recent) or [t.text for t in fallback])

    # -- the stream ------------------------------------------------------------

    def __call__(self, trajectories: Sequence[records_pb2.Trajectory]) -> list[list[records_pb2.Trajectory]]:
        learner = [t for t in trajectories if t.origin == records_pb2.ORIGIN_LEARNER_SAMPLE]
        self.recent.extend(t.text for t in learner if t.text.strip())
        card = self.style_card()
        rewrites = {t.id: t for t in learner if REWRITE in tasks(t)}
        repairs = {t.id: t for t in learner if REPAIR in tasks(t) and self._first_repair(t)}
        drafts = [self.rewrite_draft(t, card) for t in rewrites.values()] + self.repair_drafts(list(repairs.values()),
                                                                                                card)
        by_parent: dict[str, list[records_pb2.Trajectory]] = {}
        for output in self.writer.write(drafts):
            by_parent.setdefault(output.parent_id, []).append(output)
        return [by_parent.get(t.id, []) for t in trajectories]

    def _first_repair(self, trajectory: records_pb2.Trajectory) -> bool:
        """One repair per problem: a solved copy of it is enough, and each repair costs three model calls."""
        key = (trajectory.problem.batch_id, trajectory.problem.id)
        if key in self._repaired:
            return False
        self._repaired[key] = None
        if len(self._repaired) > self.remember:
            self._repaired.popitem(last=False)
        return True

    # -- gRPC ------------------------------------------------------------------

    def align(self, trajectories: Sequence[records_pb2.Trajectory], repair: bool) -> list[records_pb2.Trajectory]:
        card = self.style_card(fallback=trajectories)
        drafts = self.repair_drafts(trajectories, card) if repair else [self.rewrite_draft(t, card)
                                                                       for t in trajectories]
        return self.writer.write(drafts)

    # -- the two modes -----------------------------------------------------------

    def rewrite_draft(self, trajectory: records_pb2.Trajectory, card: StyleCard) -> Draft:
        prompt = template("rewrite")
        conversation = prompt.render(question=trajectory.problem.question, trace=trajectory.text,
                                     style_card=card.render())
        return Draft(trajectory.problem, records_pb2.ORIGIN_STYLE_ALIGNED, conversation, [prompt.id],
                     parent=trajectory, keeps_parent=True, metadata={"mode": "rewrite"})

    def repair_drafts(self, trajectories: Sequence[records_pb2.Trajectory], card: StyleCard) -> list[Draft]:
        if not trajectories:
            return []
        if self.learner is None:
            raise RuntimeError("repair needs the learner to continue from the repaired prefix")
        locate, fix = template("repair_locate"), template("repair_step")
        prompt_ids = [locate.id, fix.id]
        steps = [split_steps(t.text) for t in trajectories]
        named = self.writer.complete([
            locate.render(question=t.problem.question,
                          numbered_steps="\n".join(f"{k}. {s}" for k, s in enumerate(lines, 1)) or "(empty)")
            for t, lines in zip(trajectories, steps, strict=True)])
        wrong = [first_wrong_step(c.text, len(lines)) for c, lines in zip(named, steps, strict=True)]
        todo = [i for i, k in enumerate(wrong) if k is not None]
        fixes = self.writer.complete([
            fix.render(question=trajectories[i].problem.question,
                       prefix="\n".join(steps[i][: wrong[i] - 1]) or "(none yet)",
                       wrong_step=steps[i][wrong[i] - 1], style_card=card.render())
            for i in todo])
        prefixes = {i: "\n".join([*steps[i][: wrong[i] - 1], _one_line(f.text)]) + "\n"
                    for i, f in zip(todo, fixes, strict=True)}
        continued = self.learner.generate([learner_conversation(trajectories[i].problem) for i in todo],
                                          self.learner_params, prefixes=[prefixes[i] for i in todo]) if todo else []
        finished = {i: samples[0] for i, samples in zip(todo, continued, strict=True)}
        drafts = []
        for i, trajectory in enumerate(trajectories):
            metadata = {"mode": "repair", "repair.located": named[i].text.strip()[:200],
                        "repair.continued_by": self.learner.model_name}
            if i in finished:
                metadata["repair.step"] = str(wrong[i])
                drafts.append(Draft(trajectory.problem, records_pb2.ORIGIN_STYLE_ALIGNED, [], prompt_ids,
                                    parent=trajectory, keeps_parent=True, metadata=metadata,
                                    completion=finished[i]))
            else:
                drafts.append(Draft(trajectory.problem, records_pb2.ORIGIN_STYLE_ALIGNED, [], prompt_ids,
                                    parent=trajectory, keeps_parent=True, metadata=metadata,
                                    completion=Completion("", 0, False), rejection="no_wrong_step: the Oracle named no step of the "
                                                                   f"{len(steps[i])} as wrong"))
        return drafts


def _one_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
